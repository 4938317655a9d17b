import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { startPostgres } from '@tracegate/test-harness';
import { isolatedEnvironment, runTracegate, TracegateProcess } from './support/tracegate-process.js';

const EXAMPLE = fileURLToPath(new URL('../../examples/agent/', import.meta.url));

interface AgentRun {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * The example agent (examples/agent/run.mjs) against the all-in-one, as the README's quick start
 * runs it: every step's trace submitted with the agent's key and attached in a comment, the
 * built-in policy deciding, and the traces readable afterwards only under a reader grant.
 */
describe('the example agent through the all-in-one', () => {
  let target: Awaited<ReturnType<typeof startPostgres>>;
  const targetLog: string[] = [];
  let home: string;
  let environment: Record<string, string>;
  let tracegate: TracegateProcess | undefined;
  let agentKey = '';
  let aliceKey = '';
  let agent: AgentRun;

  const keyOf = async (name: string, kind: string) => {
    const created = await runTracegate(['key', 'create', '--name', name, '--kind', kind], environment);
    assert.equal(created.code, 0, created.stderr);
    const key = /(tg_[A-Za-z0-9_-]+)/.exec(created.stdout)?.[1];
    assert.ok(key, created.stdout);
    return key;
  };

  before(async () => {
    // The target logs every statement it receives: the trace comments must never be among them.
    target = await startPostgres({ postgresFlags: ['-c', 'log_statement=all'], onLog: (line) => targetLog.push(line) });
    const targetUrl = new URL(await target.createDatabase('billing'));
    const setup = new pg.Client({ connectionString: targetUrl.toString() });
    await setup.connect();
    await setup.query(readFileSync(path.join(EXAMPLE, 'seed.sql'), 'utf8'));
    await setup.end();

    home = mkdtempSync(path.join(tmpdir(), 'tracegate-e2e-agent-'));
    environment = await isolatedEnvironment(home);
    tracegate = await TracegateProcess.startHealthy(environment);
    const added = await runTracegate(
      ['target', 'add', 'billing', '--type', 'postgres', '--host', targetUrl.hostname, '--port', targetUrl.port, '--database', 'billing', '--user', decodeURIComponent(targetUrl.username), '--password-env', 'BILLING_PASSWORD', '--tls', 'disable'],
      { ...environment, BILLING_PASSWORD: decodeURIComponent(targetUrl.password) },
    );
    assert.equal(added.code, 0, added.stderr);
    agentKey = await keyOf('billing-bot', 'agent');
    aliceKey = await keyOf('alice', 'human');

    agent = await new Promise<AgentRun>((resolve) => {
      execFile(
        process.execPath,
        [path.join(EXAMPLE, 'run.mjs')],
        {
          env: {
            PATH: process.env.PATH ?? '',
            TRACEGATE_IDENTITY: 'billing-bot',
            TRACEGATE_API_KEY: agentKey,
            TRACEGATE_GATEWAY: `127.0.0.1:${environment.TRACEGATE_GATEWAY_POSTGRES_PORT}`,
            TRACEGATE_AUDIT_ADDRESS: `127.0.0.1:${environment.TRACEGATE_AUDIT_GRPC_PORT}`,
            TRACEGATE_APPROVAL_WAIT_SECONDS: '3',
          },
          timeout: 120_000,
        },
        (error, stdout, stderr) => resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr }),
      );
    });
  });

  after(async () => {
    await tracegate?.terminate('SIGTERM');
    await target?.stop();
    if (home) rmSync(home, { recursive: true, force: true });
  });

  it('runs the scenario as the built-in policy says: a read, a masked read, a refused DROP, a held UPDATE', () => {
    assert.equal(agent.code, 0, `${agent.stdout}\n${agent.stderr}`);
    const step = (name: string) => agent.stdout.split('\n\n').map((block) => block.trim()).find((block) => block.startsWith(`${name}:`)) ?? assert.fail(`no '${name}' step in\n${agent.stdout}`);
    assert.match(step('read'), /\{"id":1,"customer_id":1,"total":"120.00","status":"open"\}\n.*\{"id":2,/s);
    const masked = step('masked read');
    assert.match(masked, /"name":"Ada Lovelace"/);
    assert.ok(!masked.includes('ada@example.com'), `the e-mail comes back masked:\n${masked}`);
    assert.match(step('blocked DROP'), /refused: 42501 /);
    assert.match(step('write held for approval'), /held for approval as request \S+;.*\n.*no decision within 3 s; disconnecting withdraws the request/s);
    assert.match(agent.stdout, /every step behaved as the policy says/);
  });

  it('never lets a trace comment reach the target, and the UPDATE never ran', async () => {
    const log = targetLog.join('');
    assert.match(log, /SELECT id, name, email FROM customers ORDER BY id/, 'the target logged the statements it ran');
    assert.ok(!log.includes('tracegate_trace_id'), 'no trace comment in the target log');
    assert.ok(!/UPDATE invoices/.test(log), 'the held UPDATE was withdrawn, not run');
  });

  it("keeps the agent's traces, masked and linked to the target, readable only under a reader grant", async () => {
    const traceIds = [...agent.stdout.matchAll(/^ {2}trace (t-[0-9a-f-]{36})$/gm)].map((m) => m[1]!);
    assert.equal(traceIds.length, 4, agent.stdout);
    const alice = { ...environment, TRACEGATE_IDENTITY: 'alice', TRACEGATE_API_KEY: aliceKey };
    const refused = await runTracegate(['traces', 'show', traceIds[0]!], alice);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /identity 'alice' holds no reader grant for agent 'billing-bot' or target 'billing'/);

    const granted = await runTracegate(['grants', 'create', '--reader', 'alice', '--target', 'billing', '--expires-in', '10m'], environment);
    assert.equal(granted.code, 0, granted.stderr);
    const shown = await runTracegate(['traces', 'show', traceIds[2]!], alice);
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(shown.stdout, /^targets\s+billing$/m);
    assert.match(shown.stdout, /thought: The table looks stale; dropping it would be quickest\./);
    assert.match(shown.stdout, /^confidence\s+0\.31$/m);
  });
});
