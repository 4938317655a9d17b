import assert from 'node:assert/strict';
import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { runCli } from '../testing/run-cli.js';
import { policyService } from '@tracegate/policy';
import { startServices, type RunningProcess } from '@tracegate/runtime';
import { freePort, startPostgres, type PostgresServer } from '@tracegate/test-harness';

const EXAMPLES = fileURLToPath(new URL('../../../../examples/policies', import.meta.url));

/** `tracegate policy …` runs offline: no service, no database, only the policy engine. */
describe('tracegate policy', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'tracegate-policy-cli-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('lints the example policies and counts their examples', async () => {
    const run = await runCli(['policy', 'lint', EXAMPLES], {});
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /: valid; 13 rules, version sha256:[0-9a-f]{64}; 21 examples read/);
  });

  it('names every problem of a broken policy with file:line:col and rule, and exits 1', async () => {
    const broken = path.join(dir, 'broken');
    await cp(EXAMPLES, broken, { recursive: true });
    await writeFile(
      path.join(broken, 'agents.yaml'),
      `version: 1
rules:
  - name: agents-read
    priority: 500
    match: { identity: { kind: agent } }
    when: trace.confidense > 0.5
    effect: allow
`,
    );
    const run = await runCli(['policy', 'lint', broken], {});
    assert.equal(run.code, 1);
    assert.equal(
      run.stderr,
      `tracegate: policy ${broken} is invalid (1 problem):\n  - ${path.join(broken, 'agents.yaml')}:6:17: rules[0] (agents-read).when: 'trace' has no field 'confidense'; it has present, confidence, model, tags\n`,
    );
  });

  it('runs the examples beside a policy: all pass', async () => {
    const run = await runCli(['policy', 'test', EXAMPLES], {});
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.match(run.stdout, /✔ .*agents\.tests\.yaml:\d+:5 a DELETE without WHERE hidden in a CTE is denied \(deny by agents-no-destructive-sql\)/);
    assert.match(run.stdout, /21 examples: 21 passed, 0 failed/);
  });

  it('reports an example the policy does not meet, and exits 1', async () => {
    const changed = path.join(dir, 'changed');
    await cp(EXAMPLES, changed, { recursive: true });
    await writeFile(
      path.join(changed, 'extra.tests.yaml'),
      `tests:
  - name: agents may truncate (they may not)
    identity: { kind: agent }
    sql: TRUNCATE invoices
    expect: { effect: allow }
`,
    );
    const run = await runCli(['policy', 'test', changed], {});
    assert.equal(run.code, 1);
    assert.match(run.stdout, new RegExp(`✖ ${path.join(changed, 'extra.tests.yaml').replaceAll('/', '\\/')}:2:5 agents may truncate \\(they may not\\): effect is deny, expected allow`));
    assert.match(run.stdout, /22 examples: 21 passed, 1 failed/);
  });

  it('decides one command offline, with what it depended on and the analysis', async () => {
    const run = await runCli(
      ['policy', 'test', EXAMPLES, '--identity', 'kind:agent,groups:etl', '--target', 'name:billing,labels:env=staging', '--sql', 'UPDATE invoices SET paid = true WHERE id = 7', '--trace', 'confidence:0.5,model:m'],
      {},
    );
    assert.equal(run.code, 0, run.stderr);
    const lines = run.stdout.split('\n');
    assert.match(lines[0]!, /^review by rule agents-unsure-writes-need-review \(policy sha256:[0-9a-f]{64} from /);
    assert.ok(lines.includes('  review: group dba, quorum 1, timeout 900s'));
    assert.ok(lines.includes('  depends on: command.fingerprint, command.has_where, command.kind, command.protocol, identity.kind, statement.flags, statement.kind, statement.opaque, target.labels.env, trace.confidence, trace.present'));
    assert.ok(lines.includes('  analysis: kind update; writes invoices; has_where true'));
  });

  it('decides a shell command against the built-in policy and explains every rule', async () => {
    const run = await runCli(['policy', 'test', '--identity', 'kind:agent', '--shell', `bash -c 'rm -fr /*'`, '--explain', '--json'], {});
    assert.equal(run.code, 0, run.stderr);
    const out = JSON.parse(run.stdout) as { decision: { effect: string; rule: string }; analysis: { flags: string[] }; evaluations: { rule: string; matched: boolean }[] };
    assert.deepEqual([out.decision.effect, out.decision.rule], ['deny', 'agents-no-destructive-shell']);
    assert.deepEqual(out.analysis.flags, ['destructive_delete']);
    assert.equal(out.evaluations.find((e) => e.rule === 'agents-no-destructive-shell')?.matched, true);
  });

  it('answers a malformed option with what to write instead, and exits 2', async () => {
    const run = await runCli(['policy', 'test', '--identity', 'kind:robot', '--sql', 'SELECT 1'], {});
    assert.equal(run.code, 2);
    assert.match(run.stderr, /^tracegate: --identity needs kind:agent\|human\|service\n/);
    const both = await runCli(['policy', 'test', '--identity', 'kind:agent', '--sql', 'SELECT 1', '--shell', 'ls'], {});
    assert.match(both.stderr, /give exactly one of --sql or --shell/);
  });
});

describe('tracegate policy publish and versions against a running policy service', () => {
  const TOKEN = 'cli-policy-test-internal-token-0123456789abcdef';
  let postgres: PostgresServer;
  let proc: RunningProcess;
  let dir: string;
  let cli: Record<string, string>;

  before(async () => {
    postgres = await startPostgres();
    const grpcPort = String(await freePort());
    proc = await startServices([policyService], {
      component: 'tracegate cli test',
      databaseUrl: await postgres.createDatabase(),
      env: { TRACEGATE_POLICY_GRPC_PORT: grpcPort, TRACEGATE_POLICY_METRICS_PORT: String(await freePort()), TRACEGATE_INTERNAL_TOKEN: TOKEN, TRACEGATE_LOG_LEVEL: 'silent' },
    });
    cli = { TRACEGATE_POLICY_ADDRESS: `127.0.0.1:${grpcPort}`, TRACEGATE_INTERNAL_TOKEN: TOKEN };
    dir = await mkdtemp(path.join(tmpdir(), 'tracegate-policy-publish-'));
  });
  after(async () => {
    await proc.stop();
    await postgres.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const DOCUMENT = `version: 1
default: { agent: deny, human: allow, service: deny }
rules:
  - name: agents-read
    priority: 10
    match: { identity: { kind: agent }, statement: { kind: select } }
    effect: allow
`;

  it('publishes a document, says what changed, and lists the versions with the one in force', async () => {
    const file = path.join(dir, 'policy.yaml');
    await writeFile(file, DOCUMENT);
    const published = await runCli(['policy', 'publish', file, '--author', 'ana', '--comment', 'agents read'], cli);
    assert.equal(published.code, 0, published.stderr);
    assert.match(published.stdout, /^published sha256:[0-9a-f]{64} \(1 rules\) as ana: removed agents-no-destructive-shell, .*humans-may-run-opaque-statements; changed agents-read\n$/);
    const again = await runCli(['policy', 'publish', file, '--author', 'ana'], cli);
    assert.match(again.stdout, /is already in force; nothing published/);

    const listed = await runCli(['policy', 'versions'], cli);
    assert.equal(listed.code, 0, listed.stderr);
    const rows = listed.stdout.trimEnd().split('\n');
    assert.match(rows[0]!, /^ +VERSION +ACTIVATED +SOURCE +CHANGES +COMMENT$/);
    assert.match(rows[1]!, /^\* +sha256:[0-9a-f]{12} .* published by ana +removed agents-no-destructive-shell, .*; changed agents-read +agents read$/);
    assert.match(rows[2]!, /^ +sha256:[0-9a-f]{12} .* built-in +added /);
  });

  it('refuses a broken document before sending it, naming file:line:col', async () => {
    const file = path.join(dir, 'broken.yaml');
    await writeFile(file, DOCUMENT.replace('effect: allow', 'effect: permit'));
    const run = await runCli(['policy', 'publish', file, '--author', 'ana'], cli);
    assert.equal(run.code, 1);
    assert.match(run.stderr, new RegExp(`${file.replaceAll('/', '\\/')}:7:13: rules\\[0\\] \\(agents-read\\)\\.effect: 'permit' is not one of allow, deny, review`));
  });

  it('says how to reach the service when it is not there', async () => {
    const run = await runCli(['policy', 'versions'], { ...cli, TRACEGATE_POLICY_ADDRESS: `127.0.0.1:${await freePort()}` });
    assert.equal(run.code, 1);
    assert.match(run.stderr, /cannot reach the policy service at 127\.0\.0\.1:\d+ .*is tracegate running\? Set TRACEGATE_POLICY_ADDRESS/);
  });
});
