import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { execFileSync } from 'node:child_process';
import { before, describe, it } from 'node:test';
import { ESLint } from 'eslint';

const workspace = fileURLToPath(new URL('../../', import.meta.url));

async function lint(file: string, source: string) {
  const eslint = new ESLint({ cwd: workspace });
  const [result] = await eslint.lintText(source, { filePath: `${workspace}${file}` });
  return (result?.messages ?? []).filter((m) => m.ruleId === '@nx/enforce-module-boundaries').map((m) => m.message);
}

// The lint rule is the architecture's only guard: these prove it bites, not just that it is configured.
describe('module boundaries', () => {
  before(() => {
    // The rule reads Nx's cached project graph and silently skips itself when there is none
    // (a fresh clone): compute it first, as `nx run-many -t lint` does.
    execFileSync(process.execPath, [`${workspace}node_modules/nx/dist/bin/nx.js`, 'show', 'projects'], { cwd: workspace, stdio: 'ignore' });
  });

  it('refuses a service importing another service', async () => {
    const messages = await lint('services/gateway/src/probe.ts', "import { policyService } from '@tracegate/policy';\nexport const p = policyService;\n");
    assert.equal(messages.length, 1, 'exactly one boundary violation');
    assert.match(messages[0]!, /A project tagged with "type:service" can only depend on libs tagged with "type:lib"/);
  });

  it('refuses a lib importing a service', async () => {
    const messages = await lint('libs/events/src/probe.ts', "import { auditService } from '@tracegate/audit';\nexport const a = auditService;\n");
    assert.equal(messages.length, 1);
  });

  it('allows a service importing shared libs, and the CLI composing services', async () => {
    assert.deepEqual(await lint('services/gateway/src/probe.ts', "import { TOPICS } from '@tracegate/events';\nexport const t = TOPICS;\n"), []);
    assert.deepEqual(await lint('tools/cli/src/probe.ts', "import { gatewayService } from '@tracegate/gateway';\nexport const g = gatewayService;\n"), []);
  });
});
