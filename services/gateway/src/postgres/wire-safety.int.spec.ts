import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import type pg from 'pg';
import { expectEventually, pollUntil, startPostgres } from '@tracegate/test-harness';
import { PROTOCOL_3_2, serializeFrontend, type FrontendMessage } from '../protocol/postgres/index.js';
import { BackendType, readCString, readReportFields } from './backend-framer.js';
import { AGENT, RuleJudge, startGatewayFixture, type GatewayFixture } from './testing/gateway-fixture.js';
import { describeError, RawClient, sqlstateOf, transactionStatus, typesOf } from './testing/raw-client.js';
import type { StatementContext, StatementDecision } from './ports.js';

// Start-up negotiation, the fast-path FunctionCall, denials and malformed connections, with the
// target logging every statement it receives (log_statement=all), so a test can prove what
// never reached it.

const LOGIN = { user: AGENT.name, database: 'billing', application_name: 'wire-safety' };
const FUNCTION_OID_PG_BACKEND_PID = 2026;
/** Short, so the test of it is quick; long enough for any client here to log in. */
const STARTUP_TIMEOUT_MS = 1500;

/** A psql process kept open, asked one statement at a time. */
class PsqlSession {
  private output = '';
  private errors = '';
  private asked = 0;
  private constructor(private readonly child: ChildProcessWithoutNullStreams) {
    child.stdout.on('data', (d: Buffer) => (this.output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (this.errors += d.toString()));
  }

  static open(url: string): PsqlSession {
    return new PsqlSession(spawn('psql', ['-X', '-At', '-v', 'ON_ERROR_STOP=0', url], { env: { ...process.env, PGCONNECT_TIMEOUT: '10' } }));
  }

  /** Sends one statement and resolves with what psql printed for it. */
  async ask(sql: string): Promise<string> {
    this.asked += 1;
    const marker = `--answered-${this.asked}--`;
    const from = this.output.length;
    this.child.stdin.write(`${sql}\n\\echo ${marker}\n`);
    await pollUntil(() => this.output.includes(marker, from) || this.child.exitCode !== null, { description: `psql's answer to ${sql}` });
    assert.equal(this.child.exitCode, null, `psql is still running (stderr: ${this.errors})`);
    return this.output.slice(from, this.output.indexOf(marker, from));
  }

  get stderr(): string {
    return this.errors;
  }

  async close(): Promise<number | null> {
    this.child.stdin.end('\\q\n');
    if (this.child.exitCode !== null) return this.child.exitCode;
    return new Promise((resolve) => this.child.once('exit', (code) => resolve(code)));
  }
}

/** Connects, writes `bytes`, and resolves with everything sent back before the gateway closed. */
function sendAndCollect(port: number, bytes: Buffer, endAfterWrite = false): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const socket = net.connect({ host: '127.0.0.1', port }, () => (endAfterWrite ? socket.end(bytes) : socket.write(bytes)));
    socket.on('data', (d: Buffer) => chunks.push(d));
    socket.on('close', () => resolve(Buffer.concat(chunks)));
    socket.on('error', reject);
  });
}

/** The fixture's rules, and FunctionCalls allowed while a test says so. */
class FunctionCallJudge extends RuleJudge {
  allowFunctionCalls = false;
  override async decide(statement: StatementContext): Promise<StatementDecision> {
    if (statement.protocol === 'function-call' && this.allowFunctionCalls) {
      this.seen.push(statement);
      return { effect: 'allow', rule: 'fast-path-allowed', reason: '', policyVersion: 'v-test', maskingProfile: '' };
    }
    return super.decide(statement);
  }
}

describe('wire safety: start-up, function calls, denials and malformed connections', () => {
  let target: Awaited<ReturnType<typeof startPostgres>>;
  let gateway: GatewayFixture;
  const judge = new FunctionCallJudge();
  const targetLog: string[] = [];
  const logged = () => targetLog.join('');

  before(async () => {
    target = await startPostgres({ postgresFlags: ['-c', 'log_statement=all'], onLog: (line) => targetLog.push(line) });
    gateway = await startGatewayFixture(target, { judge, startupTimeoutMs: STARTUP_TIMEOUT_MS });
    const setup = await gateway.direct();
    await setup.query('CREATE TABLE invoices (id int PRIMARY KEY, amount numeric, note text)');
    await setup.query("INSERT INTO invoices VALUES (1, 10.5, 'first'), (2, 20, 'second')");
    await setup.end();
  });

  after(async () => {
    await gateway?.close();
    await target?.stop();
  });

  const loggedIn = async (): Promise<RawClient> => {
    const client = await RawClient.connectTls(gateway.port);
    await client.login(LOGIN, AGENT.key);
    return client;
  };

  describe('start-up', () => {
    it('answers GSSENCRequest with N, and the client goes on to TLS and a working session (as libpq with gssencmode=prefer)', async () => {
      const client = await RawClient.connect(gateway.port);
      try {
        client.send({ type: 'gssEncRequest' });
        assert.equal(await client.readEncryptionAnswer(), 'N');
        await client.upgradeToTls();
        await client.login(LOGIN, AGENT.key);
        client.send({ type: 'query', text: "SELECT 'after gssenc' AS x" });
        const reply = await client.untilReady();
        assert.equal(typesOf(reply), 'T D C Z');
      } finally {
        client.destroy();
      }
    });

    it('answers a protocol 3.2 StartupMessage with NegotiateProtocolVersion (3.0, unknown _pq_ options listed) and the session works', async () => {
      const client = await RawClient.connectTls(gateway.port);
      try {
        const greeting = await client.login({ ...LOGIN, '_pq_.tracegate_test_option': 'on' }, AGENT.key, PROTOCOL_3_2);
        const negotiate = client.preLogin.find((f) => f.type === BackendType.NegotiateProtocolVersion);
        assert.ok(negotiate, `NegotiateProtocolVersion came before authentication (got ${typesOf(client.preLogin)})`);
        assert.equal(negotiate.body.readInt32BE(0), 0, 'the newest minor version the gateway speaks is 3.0');
        assert.equal(negotiate.body.readInt32BE(4), 1);
        assert.equal(readCString(negotiate.body, 8), '_pq_.tracegate_test_option');
        const key = greeting.find((f) => f.type === BackendType.BackendKeyData)!;
        assert.equal(key.body.length, 8, 'a 3.0 BackendKeyData: process id and a 4-byte secret key');
        client.send({ type: 'query', text: 'SELECT 6 * 7 AS answer' });
        const reply = await client.untilReady();
        assert.equal(typesOf(reply), 'T D C Z');
        assert.ok(reply[1]!.body.includes('42'));
      } finally {
        client.destroy();
      }
    });

    it('closes a connection that does not finish start-up in time (57014), before and after TLS, but never a session that logged in', async () => {
      const silent = RawClient.connect(gateway.port).then((c) => c.untilClosed());
      const afterTls = RawClient.connectTls(gateway.port).then((c) => c.untilClosed());
      const noPassword = RawClient.connectTls(gateway.port).then((c) => {
        c.send({ type: 'startupMessage', protocolVersion: { major: 3, minor: 0 }, parameters: new Map([['user', AGENT.name], ['database', 'billing']]) });
        return c.untilClosed();
      });
      const idleSince = Date.now();
      const idle = await loggedIn();
      try {
        const silentFrames = await silent;
        assert.equal(typesOf(silentFrames), 'E');
        assert.equal(sqlstateOf(silentFrames[0]!), '57014');
        assert.match(describeError(silentFrames[0]!), /canceling authentication due to timeout/);
        assert.equal(sqlstateOf((await afterTls)[0]!), '57014');
        assert.equal(typesOf(await noPassword), 'R E', 'asked for the password, then timed out');
        await new Promise((resolve) => setTimeout(resolve, Math.max(0, idleSince + STARTUP_TIMEOUT_MS + 300 - Date.now())));
        idle.send({ type: 'query', text: 'SELECT 1' });
        assert.equal(typesOf(await idle.untilReady()), 'T D C Z', 'an idle session outlives the start-up deadline');
      } finally {
        idle.destroy();
      }
    });

    it('refuses plaintext bytes sent with the SSLRequest, before the handshake, with 08P01: they never reach the target', async () => {
      const injected = serializeFrontend({ type: 'query', text: "SELECT 'injected-before-tls-marker'" });
      const reply = await sendAndCollect(gateway.port, Buffer.concat([serializeFrontend({ type: 'sslRequest' }), injected]));
      assert.equal(String.fromCharCode(reply[0]!), 'E', 'an ErrorResponse, not S');
      const fields = readReportFields(reply.subarray(5, 1 + reply.readInt32BE(1)));
      assert.equal(fields.get('C'), '08P01');
      assert.match(fields.get('M') ?? '', /unencrypted data after SSLRequest/);
      // Plaintext where the TLS ClientHello belongs, after the 'S': the handshake fails and the connection ends.
      const afterAnswer = await new Promise<Buffer>((resolve, reject) => {
        const chunks: Buffer[] = [];
        const socket = net.connect({ host: '127.0.0.1', port: gateway.port }, () => socket.write(serializeFrontend({ type: 'sslRequest' })));
        socket.once('data', (d: Buffer) => {
          chunks.push(d);
          socket.on('data', (more: Buffer) => chunks.push(more));
          socket.write(serializeFrontend({ type: 'query', text: "SELECT 'injected-after-answer-marker'" }));
        });
        socket.on('close', () => resolve(Buffer.concat(chunks)));
        socket.on('error', reject);
      });
      assert.equal(afterAnswer.toString('latin1', 0, 1), 'S');
      const ok = await gateway.psql(['-c', "SELECT 'allowed-after-injection-marker'"]);
      assert.equal(ok.stdout, 'allowed-after-injection-marker\n');
      await expectEventually(() => assert.match(logged(), /allowed-after-injection-marker/));
      assert.doesNotMatch(logged(), /injected-before-tls-marker|injected-after-answer-marker/);
    });
  });

  describe('FunctionCall', () => {
    it('refuses a FunctionCall with 42501 and the connection stays usable', async () => {
      const client = await loggedIn();
      try {
        client.send({ type: 'functionCall', functionOid: FUNCTION_OID_PG_BACKEND_PID, argumentFormats: [], arguments: [], resultFormat: 0 });
        const reply = await client.untilReady();
        assert.equal(typesOf(reply), 'E Z', reply.map((f) => (f.type === BackendType.ErrorResponse ? describeError(f) : '')).join(''));
        assert.equal(sqlstateOf(reply[0]!), '42501');
        assert.match(describeError(reply[0]!), /agents may not delete or drop/, "the policy's reason (it refuses what it cannot read)");
        assert.equal(transactionStatus(reply[1]!), 'I');
        assert.ok(judge.seen.some((s) => s.protocol === 'function-call'), 'the policy was asked');
        client.send({ type: 'query', text: 'SELECT 1' });
        assert.equal(typesOf(await client.untilReady()), 'T D C Z');
      } finally {
        client.destroy();
      }
    });

    it('runs a FunctionCall where a policy allows it', async () => {
      const client = await loggedIn();
      judge.allowFunctionCalls = true;
      try {
        client.send({ type: 'functionCall', functionOid: FUNCTION_OID_PG_BACKEND_PID, argumentFormats: [], arguments: [], resultFormat: 0 });
        const reply = await client.untilReady();
        assert.equal(typesOf(reply), 'V Z');
        assert.ok(Number(reply[0]!.body.toString('latin1', 4)) > 0, 'pg_backend_pid() answered');
      } finally {
        judge.allowFunctionCalls = false;
        client.destroy();
      }
    });

    it('aborts an open transaction on a refused FunctionCall, as an error there would', async () => {
      const client = await loggedIn();
      try {
        client.send({ type: 'query', text: 'BEGIN' });
        await client.untilReady();
        client.send({ type: 'functionCall', functionOid: FUNCTION_OID_PG_BACKEND_PID, argumentFormats: [], arguments: [], resultFormat: 0 });
        const reply = await client.untilReady();
        assert.equal(sqlstateOf(reply[0]!), '42501');
        assert.equal(transactionStatus(reply.at(-1)!), 'E', 'the transaction is aborted');
        client.send({ type: 'query', text: 'SELECT 1' });
        assert.equal(sqlstateOf((await client.untilReady())[0]!), '25P02');
        client.send({ type: 'query', text: 'ROLLBACK' });
        assert.equal(transactionStatus((await client.untilReady()).at(-1)!), 'I');
      } finally {
        client.destroy();
      }
    });
  });

  describe('denials', () => {
    it('never sends a denied statement (or its parameters) to the target, while allowed ones arrive', async () => {
      const simple = await gateway.psql(['-c', "DELETE FROM invoices WHERE note = 'denied-simple-marker'"]);
      assert.match(simple.stderr, /ERROR: {2}agents may not delete or drop/);
      const multi = await gateway.psql(['-c', "SELECT 'allowed-multi-marker'; DELETE FROM invoices WHERE note = 'denied-multi-marker'"]);
      assert.match(multi.stderr, /agents may not delete or drop/);
      const c = await gateway.client();
      try {
        const deniedText = "DELETE FROM invoices WHERE note = 'denied-extended-marker' OR note = $1";
        await assert.rejects(c.query({ name: 'denied-named', text: deniedText, values: ['denied-parameter-marker'] }), (e: { code: string }) => e.code === '42501');
        await assert.rejects(c.query({ name: 'denied-named', text: deniedText, values: ['denied-reused-parameter-marker'] }), (e: { code: string }) => e.code === '42501');
        assert.deepEqual((await c.query({ text: "SELECT $1::text AS v, 'allowed-extended-marker' AS m", values: ['allowed-parameter-marker'] })).rows, [{ v: 'allowed-parameter-marker', m: 'allowed-extended-marker' }]);
      } finally {
        await c.end();
      }
      const direct = await gateway.direct();
      assert.equal((await direct.query('SELECT count(*)::int AS n FROM invoices')).rows[0].n, 2, 'nothing was deleted');
      await direct.end();
      await expectEventually(() => {
        for (const marker of ['allowed-multi-marker', 'allowed-extended-marker', 'allowed-parameter-marker']) assert.match(logged(), new RegExp(marker));
      });
      for (const marker of ['denied-simple-marker', 'denied-multi-marker', 'denied-extended-marker', 'denied-parameter-marker', 'denied-reused-parameter-marker']) {
        assert.doesNotMatch(logged(), new RegExp(marker), `${marker} never reached the target`);
      }
    });

    it('a denial inside a pipelined batch fails that batch where it stands: the INSERT before it is rolled back, the batch after it runs', async () => {
      const client = await loggedIn();
      try {
        const p = (statement: string, text: string): FrontendMessage => ({ type: 'parse', statement, text, parameterTypes: [] });
        const b = (statement: string, parameters: Buffer[] = []): FrontendMessage => ({ type: 'bind', portal: '', statement, parameterFormats: [], parameters, resultFormats: [] });
        const e: FrontendMessage = { type: 'execute', portal: '', maxRows: 0 };
        client.send(
          p('ins', "INSERT INTO invoices VALUES (50, 5, 'pipelined')"),
          b('ins'),
          e,
          p('del', 'DELETE FROM invoices WHERE id = $1'),
          b('del', [Buffer.from('1')]),
          e,
          p('', "SELECT 'skipped-after-denial-marker'"),
          b(''),
          e,
          { type: 'sync' },
          p('', 'SELECT count(*) FROM invoices'),
          b(''),
          e,
          { type: 'sync' },
        );
        const first = await client.untilReady();
        assert.equal(typesOf(first), '1 2 C 1 2 E Z');
        assert.equal(sqlstateOf(first[5]!), '42501');
        assert.match(describeError(first[5]!), /agents may not delete or drop/);
        const second = await client.untilReady();
        assert.equal(typesOf(second), '1 2 D C Z');
        assert.equal(second[2]!.body.toString('utf8', 6), '2', 'the INSERT was rolled back with the batch, and nothing was deleted');
      } finally {
        client.destroy();
      }
      assert.doesNotMatch(logged(), /skipped-after-denial-marker/, 'the statement after the denial never ran');
    });
  });

  describe('resilience', () => {
    const malformed: readonly { name: string; run: () => Promise<void> }[] = [
      {
        name: 'a truncated start-up packet, then the client hangs up',
        run: async () => {
          const packet = serializeFrontend({ type: 'startupMessage', protocolVersion: { major: 3, minor: 0 }, parameters: new Map([['user', AGENT.name]]) });
          await sendAndCollect(gateway.port, packet.subarray(0, 9), true);
        },
      },
      {
        name: 'garbage instead of a start-up packet',
        run: async () => {
          const reply = await sendAndCollect(gateway.port, Buffer.from('GET / HTTP/1.1\r\nHost: tracegate\r\n\r\n'));
          assert.equal(String.fromCharCode(reply[0]!), 'E');
        },
      },
      {
        name: 'an unknown message type after login',
        run: async () => {
          const client = await loggedIn();
          client.writeRaw(Buffer.from([0x01, 0, 0, 0, 4]));
          const frames = await client.untilClosed();
          assert.equal(typesOf(frames), 'E');
          assert.equal(sqlstateOf(frames[0]!), '08P01');
        },
      },
      {
        name: 'a 2 GiB length claim after login',
        run: async () => {
          const client = await loggedIn();
          client.writeRaw(Buffer.from([0x51, 0x7f, 0xff, 0xff, 0xff, 0x53, 0x45]));
          const frames = await client.untilClosed();
          assert.equal(typesOf(frames), 'E');
          assert.equal(sqlstateOf(frames[0]!), '08P01');
        },
      },
    ];

    it('ends a session whose target backend is terminated with the target\'s one FATAL, as a direct session ends, and goes on serving', async () => {
      /** Terminates the backend serving `c` and returns the errors node-postgres reported, in order. */
      const terminate = async (c: pg.Client, name: string) => {
        const errors: string[] = [];
        c.on('error', (error: Error & { code?: string }) => errors.push(error.code ?? error.message));
        const ended = new Promise<void>((resolve) => c.once('end', resolve));
        const admin = await gateway.direct();
        try {
          const { rows } = await admin.query<{ ok: boolean }>('SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE application_name = $1', [name]);
          assert.deepEqual(rows, [{ ok: true }]);
        } finally {
          await admin.end();
        }
        await ended;
        return errors;
      };
      const viaTarget = await terminate(await gateway.direct({ application_name: 'terminated-direct' }), 'terminated-direct');
      assert.equal(viaTarget[0], '57P01');
      // A second FATAL from the gateway would reach a client that (reasonably) stopped listening
      // for errors after the first, as an uncaught 'error' event.
      const viaGateway = await terminate(await gateway.client({ application_name: 'terminated-through-gateway' }), 'terminated-through-gateway');
      assert.deepEqual(viaGateway, viaTarget);
      const ok = await gateway.psql(['-c', 'SELECT 5']);
      assert.equal(ok.stdout, '5\n');
      await expectEventually(() => assert.equal(gateway.listener.sessionCount, 0));
    });

    it('keeps a healthy psql session (with an open transaction) working while malformed connections come and go', async () => {
      const psql = PsqlSession.open(gateway.gatewayUrl());
      try {
        assert.equal(await psql.ask('BEGIN;'), 'BEGIN\n');
        assert.equal(await psql.ask("INSERT INTO invoices VALUES (100, 1, 'resilience');"), 'INSERT 0 1\n');
        const attacks = (async () => {
          for (let round = 0; round < 10; round += 1) for (const m of malformed) await m.run();
        })();
        let asked = 0;
        let attacksDone = false;
        void attacks.finally(() => (attacksDone = true));
        while (!attacksDone || asked < 10) {
          asked += 1;
          assert.equal(await psql.ask(`SELECT ${asked}, count(*) FROM invoices WHERE id = 100;`), `${asked}|1\n`);
        }
        await attacks;
        assert.equal(await psql.ask('COMMIT;'), 'COMMIT\n');
        assert.equal(psql.stderr, '');
      } finally {
        assert.equal(await psql.close(), 0);
      }
      const direct = await gateway.direct();
      assert.equal((await direct.query('SELECT count(*)::int AS n FROM invoices WHERE id = 100')).rows[0].n, 1);
      await direct.query('DELETE FROM invoices WHERE id = 100');
      await direct.end();
      await expectEventually(() => assert.equal(gateway.listener.sessionCount, 0, 'every malformed connection was let go'));
    });
  });
});

