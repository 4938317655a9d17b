import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { pollUntil, startPostgres } from '@tracegate/test-harness';
import { isolatedEnvironment, runTracegate, TracegateProcess } from './support/tracegate-process.js';

const EXAMPLE_POLICIES = fileURLToPath(new URL('../../examples/policies', import.meta.url));

/**
 * The example policies (examples/policies) deciding real psql sessions: the target's labels come
 * from the broker, trace confidence from the agent's submitted trace, and a review ends in a
 * reviewer's CLI approval — the same decisions `tracegate policy test` gives offline.
 */
describe('the example policies through the gateway', () => {
  let postgres: Awaited<ReturnType<typeof startPostgres>>;
  let home: string;
  let environment: Record<string, string>;
  let tracegate: TracegateProcess | undefined;
  const keys: Record<string, string> = {};
  const targets: Record<string, pg.Client> = {};

  const psql = async (target: string, sql: string) => {
    const child = spawn('psql', ['-X', '-At', '-v', 'ON_ERROR_STOP=1', `postgresql://billing-bot:${keys['billing-bot']}@127.0.0.1:${environment.TRACEGATE_GATEWAY_POSTGRES_PORT}/${target}?sslmode=require`, '-c', sql], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const done = once(child, 'exit').then(([code]) => ({ code: code as number | null, stdout, stderr }));
    return { done, stderr: () => stderr };
  };
  const ran = async (target: string, sql: string) => (await psql(target, sql)).done;
  const trace = async (confidence: number) => {
    const file = path.join(home, `trace-${confidence}.json`);
    writeFileSync(file, JSON.stringify({ agent: { name: 'billing-bot', model: 'none' }, prompt: 'mark invoice 7 paid', confidence }));
    const submitted = await runTracegate(['traces', 'submit', '--file', file, '--json'], { ...environment, TRACEGATE_IDENTITY: 'billing-bot', TRACEGATE_API_KEY: keys['billing-bot']! });
    assert.equal(submitted.code, 0, submitted.stderr);
    return (JSON.parse(submitted.stdout) as { id: string }).id;
  };

  before(async () => {
    postgres = await startPostgres();
    home = mkdtempSync(path.join(tmpdir(), 'tracegate-e2e-policy-'));
    environment = { ...(await isolatedEnvironment(home)), DATABASE_URL: await postgres.createDatabase('tracegate'), TRACEGATE_POLICY_DIR: EXAMPLE_POLICIES };
    tracegate = await TracegateProcess.startHealthy(environment);
    for (const [name, env] of [['billing', 'production'], ['scratch', 'staging']] as const) {
      const url = new URL(await postgres.createDatabase(name));
      const client = new pg.Client({ connectionString: url.toString() });
      await client.connect();
      await client.query('CREATE TABLE invoices (id int PRIMARY KEY, paid boolean NOT NULL DEFAULT false)');
      await client.query('INSERT INTO invoices (id) SELECT generate_series(1, 10)');
      targets[name] = client;
      const added = await runTracegate(
        ['target', 'add', name, '--type', 'postgres', '--host', url.hostname, '--port', url.port, '--database', name, '--user', decodeURIComponent(url.username), '--password-env', 'TARGET_PASSWORD', '--tls', 'disable', '--label', `env=${env}`],
        { ...environment, TARGET_PASSWORD: decodeURIComponent(url.password) },
      );
      assert.equal(added.code, 0, added.stderr);
    }
    for (const [name, kind, group] of [['billing-bot', 'agent', 'bots'], ['dana', 'human', 'dba']] as const) {
      const created = await runTracegate(['key', 'create', '--name', name, '--kind', kind, '--group', group], environment);
      assert.equal(created.code, 0, created.stderr);
      keys[name] = /(tg_[A-Za-z0-9_-]+)/.exec(created.stdout)![1]!;
    }
  });

  after(async () => {
    await Promise.all(Object.values(targets).map((c) => c.end()));
    await tracegate?.terminate('SIGTERM');
    await postgres?.stop();
    if (home) rmSync(home, { recursive: true, force: true });
  });

  it('lets an agent read production, and refuses its writes there by the target\'s label, even with a confident trace', async () => {
    const read = await ran('billing', 'SELECT count(*) FROM invoices');
    assert.equal(read.code, 0, read.stderr);
    assert.equal(read.stdout, '10\n');
    const confident = await trace(0.95);
    const write = await ran('billing', `UPDATE invoices SET paid = true WHERE id = 1 /*tracegate_trace_id='${confident}'*/`);
    assert.notEqual(write.code, 0);
    assert.match(write.stderr, /ERROR: +agents are read-only on production targets/);
    assert.equal((await targets.billing!.query('SELECT paid FROM invoices WHERE id = 1')).rows[0].paid, false);
  });

  it('refuses DROP, a DELETE without WHERE hidden in a CTE, and a DO block, wherever the agent is', async () => {
    for (const sql of ['DROP TABLE invoices', 'WITH d AS (DELETE FROM invoices RETURNING *) SELECT count(*) FROM d', "DO $$ BEGIN EXECUTE 'DROP TABLE invoices'; END $$"]) {
      const refused = await ran('scratch', sql);
      assert.notEqual(refused.code, 0, sql);
      assert.match(refused.stderr, /ERROR: +(agents may not DROP|tracegate cannot tell what this command does)/, sql);
    }
    assert.equal((await targets.scratch!.query('SELECT count(*)::int AS n FROM invoices')).rows[0].n, 10);
  });

  it('runs a confident write on staging at once, and holds an unsure one until a DBA approves it', async () => {
    const confident = await trace(0.9);
    const sure = await ran('scratch', `UPDATE invoices SET paid = true WHERE id = 2 /*tracegate_trace_id='${confident}'*/`);
    assert.equal(sure.code, 0, sure.stderr);
    assert.equal(sure.stdout, 'UPDATE 1\n');

    const unsure = await trace(0.6);
    const held = await psql('scratch', `UPDATE invoices SET paid = true WHERE id = 3 /*tracegate_trace_id='${unsure}'*/`);
    const requestId = await pollUntil(() => /held for approval \(request ([^)]+)\)/.exec(held.stderr())?.[1], { timeoutMs: 60_000, description: 'the hold notice' });
    assert.equal((await targets.scratch!.query('SELECT paid FROM invoices WHERE id = 3')).rows[0].paid, false);
    const approved = await runTracegate(['approvals', 'approve', requestId], { ...environment, TRACEGATE_API_KEY: keys.dana! });
    assert.equal(approved.code, 0, approved.stderr);
    const result = await held.done;
    assert.equal(result.code, 0, result.stderr);
    assert.equal((await targets.scratch!.query('SELECT paid FROM invoices WHERE id = 3')).rows[0].paid, true);
  });
});
