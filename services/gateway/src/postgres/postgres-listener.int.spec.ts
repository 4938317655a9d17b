import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { PostgresEventLog, TOPICS, verifyChain, type CloudEvent } from '@tracegate/events';
import { createLogger } from '@tracegate/runtime';
import { expectEventually, startPostgres } from '@tracegate/test-harness';
import { EventSessionRecorder } from './event-session-recorder.js';
import { runProgram, startGatewayFixture, type GatewayFixture } from './testing/gateway-fixture.js';

describe('Postgres listener', () => {
  let target: Awaited<ReturnType<typeof startPostgres>>;
  let targetUrl: URL;
  let eventLog: PostgresEventLog;
  let gateway: GatewayFixture;
  let port: number;
  let certFile: string;

  const gatewayUrl = (key?: string, sslmode?: string) => gateway.gatewayUrl({ key, sslmode });
  const client = () => gateway.client();
  const direct = () => gateway.direct();
  const psql = (args: string[], key?: string) => gateway.psql(args, { key });

  before(async () => {
    target = await startPostgres();
    eventLog = await PostgresEventLog.connect(await target.createDatabase('eventlog'));
    gateway = await startGatewayFixture(target, { recorder: new EventSessionRecorder(eventLog, createLogger('gateway-test', 'silent')) });
    ({ port, targetUrl, certFile } = gateway);
    const setup = await direct();
    await setup.query('CREATE TABLE invoices (id int PRIMARY KEY, amount numeric, note text)');
    await setup.query("INSERT INTO invoices VALUES (1, 10.5, 'first'), (2, 20, 'second')");
    await setup.end();
  });

  after(async () => {
    await gateway?.close();
    await eventLog?.close();
    await target?.stop();
  });

  it('runs psql statements over TLS with the API key as password, and the certificate is the gateway\'s', async () => {
    const result = await psql(['-c', 'SELECT id, amount FROM invoices ORDER BY id']);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, '1|10.5\n2|20\n');
    assert.match(readFileSync(certFile, 'utf8'), /BEGIN CERTIFICATE/);
  });

  it('refuses a wrong API key with 28P01 and a sentence saying what to do', async () => {
    const result = await psql(['-c', 'SELECT 1'], 'tg_wrong');
    assert.notEqual(result.code, 0);
    assert.match(result.stderr, /password authentication failed for tracegate identity "agent-1"/);
    assert.match(result.stderr, /create one with `tracegate key create`/);
  });

  it('refuses a client that does not use TLS, since its password is an API key', async () => {
    const result = await runProgram('psql', ['-X', '-At', gatewayUrl(undefined, 'disable'), '-c', 'SELECT 1']);
    assert.notEqual(result.code, 0);
    assert.match(result.stderr, /tracegate requires an encrypted connection/);
  });

  it('denies a statement inside a multi-statement query exactly where it stands: nothing before it is committed', async () => {
    const result = await psql(['-c', "INSERT INTO invoices VALUES (3, 30, 'third'); DELETE FROM invoices; SELECT 1"]);
    assert.match(result.stderr, /ERROR: {2}agents may not delete or drop/);
    const check = await direct();
    const { rows } = await check.query<{ n: string }>('SELECT count(*) AS n FROM invoices');
    await check.end();
    assert.equal(rows[0]!.n, '2', 'the INSERT before the denied DELETE was rolled back with the implicit transaction');
  });

  it('aborts an explicit transaction on a denial, as PostgreSQL would after an error', async () => {
    const c = await client();
    try {
      await c.query('BEGIN');
      await c.query("INSERT INTO invoices VALUES (4, 40, 'fourth')");
      await assert.rejects(c.query('DELETE FROM invoices WHERE id = 1'), (e: { code: string; message: string }) => e.code === '42501' && /agents may not delete/.test(e.message));
      await assert.rejects(c.query('SELECT 1'), (e: { code: string }) => e.code === '25P02'); // in failed transaction
      await c.query('ROLLBACK');
      const { rows } = await c.query<{ n: string }>('SELECT count(*) AS n FROM invoices');
      assert.equal(rows[0]!.n, '2');
    } finally {
      await c.end();
    }
  });

  it('runs extended-protocol statements with text and binary parameters, and denies in it too with the connection still usable', async () => {
    const c = await client();
    try {
      const named = { name: 'by-id', text: 'SELECT note FROM invoices WHERE id = $1', values: [2] };
      assert.deepEqual((await c.query(named)).rows, [{ note: 'second' }]);
      assert.deepEqual((await c.query(named)).rows, [{ note: 'second' }], 'the prepared statement is reused');
      assert.deepEqual((await c.query({ text: 'SELECT $1::bytea AS b', values: [Buffer.from([0, 1, 255])] })).rows, [{ b: Buffer.from([0, 1, 255]) }]);
      await assert.rejects(c.query({ text: 'DELETE FROM invoices WHERE id = $1', values: [1] }), (e: { code: string }) => e.code === '42501');
      assert.deepEqual((await c.query('SELECT count(*)::int AS n FROM invoices')).rows, [{ n: 2 }]);
    } finally {
      await c.end();
    }
  });

  it('forwards a CancelRequest to the right target backend', async () => {
    const c = await client();
    try {
      const sleeping = c.query('SELECT pg_sleep(30)');
      await new Promise((r) => setTimeout(r, 300));
      const { processID, secretKey } = c as unknown as { processID: number; secretKey: number };
      await new Promise<void>((resolve, reject) => {
        const socket = net.connect({ host: '127.0.0.1', port }, () => {
          const packet = Buffer.alloc(16);
          packet.writeInt32BE(16, 0);
          packet.writeInt32BE(80877102, 4);
          packet.writeInt32BE(processID, 8);
          packet.writeInt32BE(secretKey, 12);
          socket.end(packet);
        });
        socket.on('close', () => resolve());
        socket.on('error', reject);
      });
      await assert.rejects(sleeping, (e: { code: string }) => e.code === '57014'); // query_canceled
      assert.deepEqual((await c.query('SELECT 1 AS one')).rows, [{ one: 1 }]);
    } finally {
      await c.end();
    }
  });

  it('answers a malformed message with 08P01 and stays up for everyone else, fifty times over', async () => {
    for (let i = 0; i < 50; i += 1) {
      const reply = await new Promise<Buffer>((resolve, reject) => {
        const socket = net.connect({ host: '127.0.0.1', port }, () => {
          // A start-up packet claiming 2 GiB.
          const packet = Buffer.alloc(8);
          packet.writeInt32BE(0x7fffffff, 0);
          packet.writeInt32BE(196608, 4);
          socket.write(packet);
        });
        const chunks: Buffer[] = [];
        socket.on('data', (d: Buffer) => chunks.push(d));
        socket.on('close', () => resolve(Buffer.concat(chunks)));
        socket.on('error', reject);
      });
      assert.equal(String.fromCharCode(reply[0]!), 'E');
      assert.match(reply.toString('latin1'), /08P01/);
    }
    const result = await psql(['-c', 'SELECT 42']);
    assert.equal(result.stdout, '42\n');
  });

  it('records the session on the event log as one hash chain: started, each statement requested, decided and completed, ended', async () => {
    const result = await psql(['-c', 'SELECT count(*) FROM invoices']);
    assert.equal(result.stdout, '2\n');
    const events: CloudEvent[] = [];
    const subscription = await eventLog.subscribe({ group: `check-${Date.now()}`, topics: [TOPICS.sessions.name], handler: async (d) => void events.push(d.event) });
    try {
      await expectEventually(() => {
        const counting = events.find((e) => (e.data as { text?: string }).text === 'SELECT count(*) FROM invoices');
        assert.ok(counting, 'the statement was recorded');
        assert.ok(events.some((e) => e.subject === counting.subject && e.type === 'dev.tracegate.session.ended.v1'), 'its session ended');
      });
    } finally {
      await subscription.stop();
    }
    const bySession = Map.groupBy(events, (e) => e.subject);
    for (const [subject, chain] of bySession) assert.deepEqual(verifyChain(chain), [], `session ${subject} chain verifies`);
    const counted = [...bySession.values()].find((chain) => chain.some((e) => (e.data as { text?: string }).text === 'SELECT count(*) FROM invoices'))!;
    assert.deepEqual(
      counted.map((e) => e.type.split('.')[3]),
      ['started', 'statement_requested', 'statement_decided', 'statement_completed', 'ended'],
    );
    const started = counted[0]!.data as Record<string, unknown>;
    assert.equal(started.identityName, 'agent-1');
    assert.equal(started.target, 'billing');
    assert.equal(started.applicationName, 'psql');
    const completed = counted[3]!.data as Record<string, unknown>;
    assert.equal(completed.commandTag, 'SELECT 1');
    assert.equal(completed.rows, 1);
    const json = JSON.stringify(events);
    assert.ok(!json.includes(decodeURIComponent(targetUrl.password)), 'the target password never reaches an event');
    assert.ok(!json.includes('tg_key_agent_1'), 'the API key never reaches an event');
  });
});
