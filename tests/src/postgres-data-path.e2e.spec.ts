import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { cloudEventProblems, verifyChain, type CloudEvent } from '@tracegate/events';
import { expectEventually, pollUntil, startKafka, startPostgres } from '@tracegate/test-harness';
import { isolatedEnvironment, runTracegate, TracegateProcess } from './support/tracegate-process.js';

const run = promisify(execFile);

/**
 * The distributed data path, every service real: tracegate on an external PostgreSQL and Kafka
 * (DATABASE_URL, KAFKA_BROKERS), a target registered and an API key issued with the CLI, psql
 * through the gateway, and the session read back off Kafka with kcat as a SIEM would.
 */
describe('psql through tracegate on Kafka, every service real', () => {
  let kafka: Awaited<ReturnType<typeof startKafka>>;
  let postgres: Awaited<ReturnType<typeof startPostgres>>;
  let targetUrl: URL;
  let home: string;
  let environment: Record<string, string>;
  let tracegate: TracegateProcess | undefined;
  let agentKey = '';
  let humanKey = '';

  const psql = (name: string, key: string, sql: string) =>
    run('psql', ['-X', '-At', '-v', 'ON_ERROR_STOP=1', `postgresql://${name}:${key}@127.0.0.1:${environment.TRACEGATE_GATEWAY_POSTGRES_PORT}/billing?sslmode=require`, '-c', sql]).then(
      (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
      (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
    );

  before(async () => {
    [kafka, postgres] = await Promise.all([startKafka(), startPostgres()]);
    targetUrl = new URL(await postgres.createDatabase('billing'));
    const setup = new pg.Client({ connectionString: targetUrl.toString() });
    await setup.connect();
    await setup.query('CREATE TABLE invoices (id int PRIMARY KEY, amount numeric)');
    await setup.query('INSERT INTO invoices VALUES (1, 10), (2, 20)');
    await setup.end();

    home = mkdtempSync(path.join(tmpdir(), 'tracegate-e2e-kafka-'));
    environment = { ...(await isolatedEnvironment(home)), DATABASE_URL: await postgres.createDatabase('tracegate'), KAFKA_BROKERS: kafka.brokers };
    tracegate = TracegateProcess.start(environment);
    await pollUntil(
      async () => {
        if (tracegate!.child.exitCode !== null) throw new Error(`tracegate up exited:\n${tracegate!.stderr}\n${tracegate!.stdout.slice(-3000)}`);
        return (await runTracegate(['status'], environment)).code === 0;
      },
      { timeoutMs: 120_000, intervalMs: 500, description: 'tracegate on Kafka to become healthy' },
    );
  });

  after(async () => {
    await tracegate?.terminate('SIGTERM');
    await Promise.allSettled([kafka?.stop(), postgres?.stop()]);
    if (home) rmSync(home, { recursive: true, force: true });
  });

  it('uses the given PostgreSQL and Kafka instead of embedded ones', () => {
    const lines = tracegate!.logLines();
    assert.ok(lines.some((l) => l.msg === 'event log: kafka'));
    assert.ok(!lines.some((l) => l.msg === 'embedded PostgreSQL is up'));
  });

  it('registers a target and issues keys with the CLI, never echoing the target password', async () => {
    const password = decodeURIComponent(targetUrl.password);
    const added = await runTracegate(
      ['target', 'add', 'billing', '--type', 'postgres', '--host', targetUrl.hostname, '--port', targetUrl.port, '--database', 'billing', '--user', decodeURIComponent(targetUrl.username), '--password-env', 'BILLING_PASSWORD', '--tls', 'disable'],
      { ...environment, BILLING_PASSWORD: password },
    );
    assert.equal(added.code, 0, added.stderr);
    const listed = await runTracegate(['target', 'list'], environment);
    assert.match(listed.stdout, /billing/);
    assert.ok(!`${added.stdout}${added.stderr}${listed.stdout}`.includes(password));

    const keyOf = async (name: string, kind: string) => {
      const created = await runTracegate(['key', 'create', '--name', name, '--kind', kind], environment);
      assert.equal(created.code, 0, created.stderr);
      const key = /(tg_[A-Za-z0-9_-]+)/.exec(created.stdout)?.[1];
      assert.ok(key, `a key is printed once: ${created.stdout}`);
      return key;
    };
    agentKey = await keyOf('ci-agent', 'agent');
    humanKey = await keyOf('alice', 'human');
  });

  it('lets an agent read through the gateway and refuses its DROP with the policy\'s reason', async () => {
    const read = await psql('ci-agent', agentKey, 'SELECT sum(amount) FROM invoices');
    assert.equal(read.code, 0, read.stderr);
    assert.equal(read.stdout, '30\n');
    const drop = await psql('ci-agent', agentKey, 'DROP TABLE invoices');
    assert.notEqual(drop.code, 0);
    assert.match(drop.stderr, /ERROR: {2}.+/);
    const still = await psql('alice', humanKey, 'SELECT count(*) FROM invoices');
    assert.equal(still.stdout, '2\n', 'the table is still there');
  });

  it('refuses a wrong API key with 28P01', async () => {
    const result = await psql('ci-agent', 'tg_not_a_key', 'SELECT 1');
    assert.notEqual(result.code, 0);
    assert.match(result.stderr, /password authentication failed for tracegate identity "ci-agent"/);
  });

  it('lists the sessions and shows a session\'s statements in order, each with its decision and outcome', async () => {
    let agentSession: { id: string } | undefined;
    await expectEventually(async () => {
      const listed = await runTracegate(['sessions', 'list', '--identity', 'ci-agent', '--json'], environment);
      assert.equal(listed.code, 0, listed.stderr);
      const sessions = (JSON.parse(listed.stdout) as { sessions?: { id: string; statementCount?: number; endedAt?: unknown }[] }).sessions ?? [];
      agentSession = sessions.find((s) => s.statementCount === 1 && s.endedAt);
      assert.ok(sessions.length >= 2 && agentSession, `the agent's sessions are projected: ${listed.stdout}`);
    });
    const shown = await runTracegate(['sessions', 'list', '--identity', 'ci-agent'], environment);
    assert.match(shown.stdout, /ci-agent\s+billing/);
    // The DROP session: requested, denied, and answered with the policy's error.
    const all = JSON.parse((await runTracegate(['sessions', 'list', '--identity', 'ci-agent', '--json'], environment)).stdout) as { sessions: { id: string }[] };
    const details = await Promise.all(all.sessions.map(async (s) => (await runTracegate(['sessions', 'show', s.id], environment)).stdout));
    const dropSession = details.find((d) => d.includes('DROP TABLE invoices'));
    assert.ok(dropSession, details.join('\n---\n'));
    assert.match(dropSession, /deny/);
    assert.match(dropSession, /42501/);
    const readSession = details.find((d) => d.includes('SELECT sum(amount) FROM invoices'));
    assert.ok(readSession);
    assert.match(readSession, /allow/);
    assert.match(readSession, /SELECT 1/);
  });

  it('replays the denied DROP session from psql to its decision and verifies it intact (chain on Kafka, rows, checkpoints)', async () => {
    const all = JSON.parse((await runTracegate(['sessions', 'list', '--identity', 'ci-agent', '--json'], environment)).stdout) as { sessions: { id: string }[] };
    const replays = await Promise.all(all.sessions.map(async (s) => ({ id: s.id, replay: await runTracegate(['sessions', 'replay', s.id, '--json'], environment) })));
    const drop = replays.find((r) => r.replay.stdout.includes('DROP TABLE invoices'));
    assert.ok(drop, replays.map((r) => r.replay.stdout + r.replay.stderr).join('\n---\n'));
    assert.equal(drop.replay.code, 0, drop.replay.stderr);
    const [statement] = drop.replay.stdout.trimEnd().split('\n').map((line) => JSON.parse(line) as { sequence: number; maskedText: string; effect: string; sqlstate: string });
    assert.deepEqual([statement!.sequence, statement!.maskedText, statement!.effect, statement!.sqlstate], [1, 'DROP TABLE invoices', 'deny', '42501']);
    const verified = await runTracegate(['sessions', 'verify', drop.id], environment);
    assert.equal(verified.code, 0, verified.stdout + verified.stderr);
    assert.match(verified.stdout, new RegExp(`^session ${drop.id} is intact: \\d+ events checked`));
  });

  it('writes the session to Kafka as CloudEvents a SIEM can read with kcat, hash-chained per session', async () => {
    let events: CloudEvent[] = [];
    await expectEventually(async () => {
      const { stdout } = await run('kcat', ['-C', '-b', kafka.brokers, '-t', 'tracegate.sessions.v1', '-e', '-q', '-f', '%s\\n']);
      events = stdout.split('\n').filter(Boolean).map((line) => JSON.parse(line) as CloudEvent);
      assert.ok(events.some((e) => e.type === 'dev.tracegate.session.statement_decided.v1' && (e.data as { effect?: string }).effect === 'deny'));
      assert.ok(events.filter((e) => e.type === 'dev.tracegate.session.ended.v1').length >= 3);
    });
    for (const event of events) assert.deepEqual(cloudEventProblems(event), [], `event ${event.id} is a valid CloudEvent`);
    const bySession = Map.groupBy(events, (e) => e.subject);
    for (const [subject, chain] of bySession) {
      assert.deepEqual(verifyChain(chain.sort((a, b) => a.sequence - b.sequence)), [], `session ${subject}`);
    }
    const serialized = JSON.stringify(events);
    assert.ok(!serialized.includes(decodeURIComponent(targetUrl.password)), 'no target secret on the topic');
    assert.ok(!serialized.includes(agentKey), 'no API key on the topic');
  });
});
