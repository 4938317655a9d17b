import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { credentials, loadPackageDefinition, Metadata, status as GrpcStatus, type ClientReadableStream, type ServiceError } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import pg from 'pg';
import { auditV1, PROTO_LOADER_OPTIONS, PROTO_ROOT, SERVICE_PROTOS } from '@tracegate/contracts';
import { grpcClient, startServices, type PromiseClient, type RunningProcess } from '@tracegate/runtime';
import { expectEventually, freePort, startPostgres, type PostgresServer } from '@tracegate/test-harness';
import { GENESIS, headOf, sealEvent, verifyChain, type ChainHead, type CloudEvent } from '@tracegate/events';
import { auditService } from './audit.definition.js';
import { GatewaySessionScript } from './domain/session-events.testing.js';

const TOKEN = randomBytes(32).toString('base64url');
const CHECKPOINT_SEED = randomBytes(32).toString('base64');

function grpcError(code: GrpcStatus, pattern?: RegExp) {
  return (error: ServiceError) => {
    assert.equal(error.code, code, `expected status ${GrpcStatus[code]}, got ${GrpcStatus[error.code]}: ${error.details}`);
    if (pattern) assert.match(error.details, pattern);
    return true;
  };
}

/** The projection's rows, every column, in a stable order: what a rebuild must reproduce. */
async function projectionRows(db: pg.Client): Promise<{ sessions: unknown[]; statements: unknown[] }> {
  const sessions = await db.query(`SELECT * FROM audit.sessions ORDER BY id`);
  const statements = await db.query(`SELECT * FROM audit.statements ORDER BY session_id, sequence`);
  return { sessions: sessions.rows, statements: statements.rows };
}

describe('audit service: sessions projected from a real PostgreSQL event log, read over gRPC', () => {
  let postgres: PostgresServer;
  let databaseUrl: string;
  let environment: Record<string, string>;
  let proc: RunningProcess | undefined;
  let db: pg.Client;
  const clients: PromiseClient<auditV1.AuditServiceClient>[] = [];
  const address = () => `127.0.0.1:${environment.TRACEGATE_AUDIT_GRPC_PORT}`;
  const audit = (token: string | null = TOKEN) => {
    const client = grpcClient<auditV1.AuditServiceClient>(SERVICE_PROTOS.audit.files[0], 'tracegate.audit.v1.AuditService', address(), {
      metadata: token === null ? {} : { 'x-tracegate-internal-token': token },
    });
    clients.push(client);
    return client;
  };
  const start = async () => {
    proc = await startServices([auditService], { component: 'tracegate audit test', databaseUrl, env: environment });
  };
  const stop = async () => {
    await proc?.stop();
    proc = undefined;
  };
  const metric = async (name: string, labels: string): Promise<number> => {
    const text = await (await fetch(`http://${proc!.services[0]!.metricsAddress}/metrics`)).text();
    // Every series also carries the service's default label, so match the label among the others.
    const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && l.slice(0, l.indexOf('}')).includes(labels));
    return line ? Number(line.split(' ').at(-1)) : 0;
  };

  // Three sessions: alice's on billing (ended, with a denial and a failed statement), the CI
  // agent's on billing (open), and the CI agent's on reporting (ended, with a type the
  // projection does not know between its statements).
  const alice = new GatewaySessionScript(randomUUID(), Date.parse('2026-11-22T01:00:00Z'))
    .started({ identityId: 'key-alice', identityName: 'alice', identityKind: 'human', target: 'billing', applicationName: 'psql', clientAddress: '10.0.3.7:51422' })
    .requested('a1', 'BEGIN')
    .completed('a1', { commandTag: 'BEGIN' })
    .requested('a2', 'SELECT id, total FROM invoices WHERE id = $1', {}, { protocol: 'extended', parameterCount: 1 })
    .completed('a2', { commandTag: 'SELECT 1', rows: 1 })
    .requested('a3', 'DELETE FROM invoices', { effect: 'deny', rule: 'no-deletes', reason: 'deleting invoices is not allowed' })
    .completed('a3', { sqlstate: '42501', errorMessage: 'deleting invoices is not allowed' })
    .requested('a4', 'SELECT 1', {}, { inMultiStatement: true })
    .completed('a4', { executed: false })
    .ended('client terminated');
  const agentOpen = new GatewaySessionScript(randomUUID(), Date.parse('2026-11-22T01:10:00Z'))
    .started({ identityName: 'ci-agent', target: 'billing' })
    .requested('b1', 'SELECT count(*) FROM invoices')
    .completed('b1', { commandTag: 'SELECT 1', rows: 1 })
    .requested('b2', 'SELECT pg_sleep(600)');
  const agentReporting = new GatewaySessionScript(randomUUID(), Date.parse('2026-11-22T01:05:00Z'))
    .started({ identityName: 'ci-agent', target: 'reporting', applicationName: 'node-postgres' })
    .requested('c1', 'SELECT 42', { effect: 'allow', rule: 'agent-writes-reviewed', approvalRequestId: 'req-7', approvalState: 'approved' }, { traceId: 't-0c1f' })
    .other('statement_masked', { statementId: 'c1', profile: 'pii' })
    .completed('c1', { commandTag: 'SELECT 1', rows: 1 })
    .ended('the target closed the connection');
  const scripts = [alice, agentOpen, agentReporting];
  const eventCount = scripts.reduce((n, s) => n + s.events.length, 0);
  const knownEventCount = eventCount - 1;

  before(async () => {
    postgres = await startPostgres();
    databaseUrl = await postgres.createDatabase();
    environment = {
      TRACEGATE_AUDIT_GRPC_PORT: String(await freePort()),
      TRACEGATE_AUDIT_METRICS_PORT: String(await freePort()),
      TRACEGATE_INTERNAL_TOKEN: TOKEN,
      TRACEGATE_LOG_LEVEL: 'silent',
      TRACEGATE_AUDIT_CHECKPOINT_KEY: CHECKPOINT_SEED,
      TRACEGATE_AUDIT_CHECKPOINT_INTERVAL_MS: '200',
      TRACEGATE_AUDIT_VERIFY_INTERVAL_MS: '300',
    };
    await start();
    db = new pg.Client({ connectionString: databaseUrl });
    await db.connect();
    // As the gateway writes them: each session's events on its own key, in chain order.
    for (const script of scripts) await proc!.eventLog.append(script.records());
    // As the approvals service writes them: the review c1 was held for, approved by two reviewers.
    let head: ChainHead = GENESIS;
    const review = (event: string, data: Record<string, unknown>) => {
      const sealed = sealEvent({ type: `dev.tracegate.approval.${event}.v1`, subject: 'req-7', source: '/tracegate/approvals', data }, head);
      head = headOf(sealed);
      return { topic: 'tracegate.approvals.v1', key: 'req-7', event: sealed };
    };
    await proc!.eventLog.append([
      review('requested', { id: 'req-7', requester: { id: 'key-ci', name: 'ci-agent' }, sessionId: agentReporting.sessionId, rule: 'agent-writes-reviewed', reviewerGroup: 'dba', quorum: 2, requestedAt: '2026-11-22T01:05:00.010Z' }),
      review('approved', { id: 'req-7', reviewer: { id: 'key-alice', name: 'alice' }, at: '2026-11-22T01:05:01Z', approvals: 1, quorum: 2 }),
      review('approved', { id: 'req-7', reviewer: { id: 'key-bob', name: 'bob' }, at: '2026-11-22T01:05:02Z', approvals: 2, quorum: 2 }),
    ]);
  });

  after(async () => {
    for (const client of clients) client.close();
    await db?.end();
    await stop();
    await postgres?.stop();
  });

  it('refuses the reads without credentials or with a wrong internal token, and verification without the internal token, saying which metadata it expects', async () => {
    await assert.rejects(audit(null).listSessions({ target: '', identityId: '', identityName: '', limit: 0 }), grpcError(GrpcStatus.UNAUTHENTICATED, /^this call needs an API key in the gRPC metadata 'x-tracegate-api-key'/));
    await assert.rejects(audit(`${TOKEN}x`).getSession({ id: alice.sessionId }), grpcError(GrpcStatus.UNAUTHENTICATED, /'x-tracegate-internal-token'.*wrong/));
    await assert.rejects(audit(null).verifySession({ id: alice.sessionId }), grpcError(GrpcStatus.UNAUTHENTICATED, /^VerifySession is for tracegate's own services: it needs the internal token in the gRPC metadata 'x-tracegate-internal-token'/));
  });

  it('lists the projected sessions newest first, filtered by target and identity, up to a limit', async () => {
    const client = audit();
    await expectEventually(
      async () => {
        const { sessions } = await client.listSessions({ target: '', identityId: '', identityName: '', limit: 0 });
        assert.deepEqual(sessions.map((s) => [s.id, s.statementCount, s.lastSequence]), [
          [agentOpen.sessionId, 2, agentOpen.events.length],
          [agentReporting.sessionId, 1, agentReporting.events.length],
          [alice.sessionId, 4, alice.events.length],
        ]);
      },
      { description: 'every session event projected' },
    );
    const byTarget = await client.listSessions({ target: 'billing', identityId: '', identityName: '', limit: 0 });
    assert.deepEqual(byTarget.sessions.map((s) => s.id), [agentOpen.sessionId, alice.sessionId]);
    const byIdentity = await client.listSessions({ target: '', identityId: '', identityName: 'ci-agent', limit: 0 });
    assert.deepEqual(byIdentity.sessions.map((s) => s.id), [agentOpen.sessionId, agentReporting.sessionId]);
    const both = await client.listSessions({ target: 'reporting', identityId: '', identityName: 'ci-agent', limit: 0 });
    assert.deepEqual(both.sessions.map((s) => s.id), [agentReporting.sessionId]);
    const byIdentityId = await client.listSessions({ target: '', identityId: 'key-alice', identityName: '', limit: 0 });
    assert.deepEqual(byIdentityId.sessions.map((s) => s.id), [alice.sessionId]);
    const limited = await client.listSessions({ target: '', identityId: '', identityName: '', limit: 1 });
    assert.deepEqual(limited.sessions.map((s) => s.id), [agentOpen.sessionId]);
    const none = await client.listSessions({ target: 'nowhere', identityId: '', identityName: '', limit: 0 });
    assert.deepEqual(none.sessions, []);
    await assert.rejects(client.listSessions({ target: '', identityId: '', identityName: '', limit: 5000 }), grpcError(GrpcStatus.INVALID_ARGUMENT, /^limit 5000 is more than 1000/));
  });

  it("shows a session's facts and its statements in order, each with its decision and outcome", async () => {
    const { session, statements } = await audit().getSession({ id: alice.sessionId });
    assert.deepEqual(
      { ...session, startedAt: undefined, endedAt: undefined },
      {
        id: alice.sessionId,
        identityId: 'key-alice',
        identityName: 'alice',
        identityKind: 'human',
        target: 'billing',
        clientAddress: '10.0.3.7:51422',
        applicationName: 'psql',
        protocol: 'postgres',
        credentialLeaseId: '019a9d7e-0000-7000-8000-000000000001',
        startedAt: undefined,
        endedAt: undefined,
        endReason: 'client terminated',
        statementCount: 4,
        lastSequence: alice.events.length,
      },
    );
    const startedMs = Date.parse(alice.events[0]!.time);
    assert.deepEqual(session!.startedAt, { seconds: Math.floor(startedMs / 1000), nanos: (startedMs % 1000) * 1_000_000 });
    assert.ok(session!.endedAt, 'an ended session has its end time');
    assert.deepEqual(
      statements.map((s) => [s.sequence, s.statementId, s.maskedText, s.protocol, s.parameterCount, s.effect, s.rule, s.completed, s.executed, s.commandTag, s.rowCount, s.sqlstate, s.error]),
      [
        [1, 'a1', 'BEGIN', 'simple', 0, 'allow', 'read-only', true, true, 'BEGIN', 0, '', ''],
        [2, 'a2', 'SELECT id, total FROM invoices WHERE id = $1', 'extended', 1, 'allow', 'read-only', true, true, 'SELECT 1', 1, '', ''],
        [3, 'a3', 'DELETE FROM invoices', 'simple', 0, 'deny', 'no-deletes', true, true, '', 0, '42501', 'deleting invoices is not allowed'],
        [4, 'a4', 'SELECT 1', 'simple', 0, 'allow', 'read-only', true, false, '', 0, '', ''],
      ],
    );
    assert.equal(statements[2]!.reason, 'deleting invoices is not allowed');
    assert.equal(statements[3]!.inMultiStatement, true);
    assert.equal(statements[0]!.policyVersion, 'builtin-1');
    assert.ok(statements.every((s) => s.at && s.completedAt));

    const open = await audit().getSession({ id: agentOpen.sessionId });
    assert.ok(!open.session!.endedAt, 'an open session has no end time');
    assert.equal(open.session!.endReason, '');
    assert.deepEqual(open.statements.map((s) => [s.sequence, s.maskedText, s.completed]), [
      [1, 'SELECT count(*) FROM invoices', true],
      [2, 'SELECT pg_sleep(600)', false],
    ]);
  });

  it('skips an event type it does not know and still applies the events after it', async () => {
    await expectEventually(async () => {
      const { statements } = await audit().getSession({ id: agentReporting.sessionId });
      assert.deepEqual(statements.map((s) => [s.maskedText, s.commandTag, s.traceId, s.approvalRequestId, s.approvalState, s.approvedBy]), [
        ['SELECT 42', 'SELECT 1', 't-0c1f', 'req-7', 'approved', ['alice', 'bob']],
      ]);
    }, { description: 'the approval events projected beside the statement' });
    assert.equal(await metric('tracegate_audit_events_projected_total', 'outcome="skipped"'), 1);
    assert.equal(await metric('tracegate_audit_events_projected_total', 'outcome="applied"'), knownEventCount);
  });

  it('reports the consumer lag: events on the log not yet projected', async () => {
    await expectEventually(async () => assert.equal(await metric('tracegate_audit_projection_lag_events', ''), 0));
    const text = await (await fetch(`http://${proc!.services[0]!.metricsAddress}/metrics`)).text();
    assert.match(text, /^tracegate_audit_projection_lag_events\{[^}]*\} 0$/m);
  });

  const replay = (id: string, realTime = false): Promise<auditV1.ReplaySessionResponse[]> => {
    // ReplaySession streams, which the promise client does not do: call it raw.
    const root = loadPackageDefinition(loadSync(SERVICE_PROTOS.audit.files[0], { ...PROTO_LOADER_OPTIONS, includeDirs: [PROTO_ROOT] })) as unknown as {
      tracegate: { audit: { v1: { AuditService: new (address: string, creds: unknown) => { replaySession(request: unknown, metadata: Metadata): ClientReadableStream<auditV1.ReplaySessionResponse>; close(): void } } } };
    };
    const raw = new root.tracegate.audit.v1.AuditService(address(), credentials.createInsecure());
    const metadata = new Metadata();
    metadata.set('x-tracegate-internal-token', TOKEN);
    return new Promise<auditV1.ReplaySessionResponse[]>((resolve, reject) => {
      const received: auditV1.ReplaySessionResponse[] = [];
      const stream = raw.replaySession({ id, realTime }, metadata);
      stream.on('data', (response: auditV1.ReplaySessionResponse) => received.push(response));
      stream.on('error', reject);
      stream.on('end', () => resolve(received));
    }).finally(() => raw.close());
  };

  it('answers NOT_FOUND for an unknown session and INVALID_ARGUMENT for none, on every read', async () => {
    await assert.rejects(audit().getSession({ id: 'nope' }), grpcError(GrpcStatus.NOT_FOUND, /^no session has id 'nope'; run `tracegate sessions list`/));
    await assert.rejects(audit().getSession({ id: '' }), grpcError(GrpcStatus.INVALID_ARGUMENT, /^id is required/));
    await assert.rejects(audit().verifySession({ id: 'nope' }), grpcError(GrpcStatus.NOT_FOUND, /^no session has id 'nope'/));
    await assert.rejects(audit().verifySession({ id: '' }), grpcError(GrpcStatus.INVALID_ARGUMENT, /^id is required/));
    await assert.rejects(replay('nope'), grpcError(GrpcStatus.NOT_FOUND, /^no session has id 'nope'/));
  });

  it('replays a session statement by statement in order, each with its decision and outcome', async () => {
    const played = await replay(alice.sessionId);
    assert.deepEqual(
      played.map(({ statement: s }) => [s!.sequence, s!.maskedText, s!.effect, s!.rule, s!.commandTag, s!.sqlstate]),
      [
        [1, 'BEGIN', 'allow', 'read-only', 'BEGIN', ''],
        [2, 'SELECT id, total FROM invoices WHERE id = $1', 'allow', 'read-only', 'SELECT 1', ''],
        [3, 'DELETE FROM invoices', 'deny', 'no-deletes', '', '42501'],
        [4, 'SELECT 1', 'allow', 'read-only', '', ''],
      ],
    );
    // In real time the recorded gaps are kept: the script's statements are 15 ms apart.
    const started = performance.now();
    const live = await replay(alice.sessionId, true);
    assert.equal(live.length, 4);
    assert.ok(performance.now() - started >= 40, 'three gaps of 15 ms were waited');
  });

  it('gives every event one effect when the log delivers it again (a restart with the group reset to the beginning)', async () => {
    const projected = await projectionRows(db);
    await stop();
    const reset = await db.query(`DELETE FROM tracegate_log.consumer_offsets WHERE consumer_group LIKE 'audit-projection.%'`);
    assert.ok((reset.rowCount ?? 0) >= 1, 'the projection had committed a position');
    await start();
    // Every event comes again and is recognised as already handled (the unknown type included: it
    // was recorded the first time too, so its warning is not repeated).
    await expectEventually(async () => assert.equal(await metric('tracegate_audit_events_projected_total', 'outcome="duplicate"'), eventCount), {
      description: 'every event redelivered',
    });
    assert.equal(await metric('tracegate_audit_events_projected_total', 'outcome="applied"'), 0);
    assert.deepEqual(await projectionRows(db), projected);
    const { rows } = await db.query<{ n: string }>(`SELECT count(*) AS n FROM audit.statements`);
    assert.equal(Number(rows[0]!.n), 7);
  });

  it('rebuilds the same projection from the log after the audit schema is dropped', async () => {
    const projected = await projectionRows(db);
    assert.equal(projected.sessions.length, 3);
    await stop();
    await db.query(`DROP SCHEMA audit CASCADE`);
    await start();
    await expectEventually(async () => assert.deepEqual(await projectionRows(db), projected), { description: 'the rebuilt projection to equal the live one' });
    // Events appended after the rebuild keep flowing in.
    const late = new GatewaySessionScript(randomUUID(), Date.parse('2026-11-22T01:20:00Z')).started({ identityName: 'bob', target: 'billing' }).ended();
    await proc!.eventLog.append(late.records());
    await expectEventually(async () => {
      const { sessions } = await audit().listSessions({ target: '', identityId: '', identityName: 'bob', limit: 0 });
      assert.deepEqual(sessions.map((s) => s.id), [late.sessionId]);
    });
  });

  it('rebuilds into a fresh schema over gRPC, streaming progress, and switches over to a projection equal to the live one', async () => {
    const live = await projectionRows(db);
    const copies = (await db.query(`SELECT event_id, event FROM audit.session_events ORDER BY event_id`)).rows;
    const [{ generation: before }] = (await db.query<{ generation: string }>(`SELECT generation::text AS generation FROM audit.projection WHERE name = 'sessions'`)).rows as [{ generation: string }];
    const client = audit();
    const progress: auditV1.RebuildProjectionResponse[] = [];
    for await (const message of client.stream<auditV1.RebuildProjectionResponse>('rebuildProjection', {}) as AsyncIterable<auditV1.RebuildProjectionResponse>) progress.push(message);
    const last = progress.at(-1)!;
    assert.equal(last.done, true);
    assert.equal(last.phase, 'done');
    assert.equal(last.sessions, live.sessions.length);
    assert.ok(last.eventsProjected >= eventCount, `${last.eventsProjected} events replayed`);
    assert.deepEqual([...new Set(progress.map((p) => p.phase))], ['replaying', 'switching', 'done']);
    assert.notEqual(last.generation, before);
    const [{ generation: after }] = (await db.query<{ generation: string }>(`SELECT generation::text AS generation FROM audit.projection WHERE name = 'sessions'`)).rows as [{ generation: string }];
    assert.equal(after, last.generation);
    assert.deepEqual(await projectionRows(db), live);
    assert.deepEqual((await db.query(`SELECT event_id, event FROM audit.session_events ORDER BY event_id`)).rows, copies);
    const { rows: schemas } = await db.query(`SELECT 1 FROM pg_namespace WHERE nspname = 'audit_rebuild'`);
    assert.equal(schemas.length, 0, 'the fresh schema was moved in and dropped');
    const { rows: indexes } = await db.query<{ indexname: string }>(`SELECT indexname FROM pg_indexes WHERE schemaname = 'audit' AND tablename = 'sessions' ORDER BY indexname`);
    assert.deepEqual(indexes.map((i) => i.indexname), ['sessions_identity_id_idx', 'sessions_identity_name_idx', 'sessions_pkey', 'sessions_started_idx', 'sessions_target_idx'], 'the migrations\' index names are kept');
    // The live projector follows the new generation's group from where the rebuild stopped.
    const late = new GatewaySessionScript(randomUUID(), Date.parse('2026-11-22T01:30:00Z')).started({ identityName: 'carol', target: 'billing' }).ended();
    await proc!.eventLog.append(late.records());
    await expectEventually(async () => {
      const { sessions } = await audit().listSessions({ target: '', identityId: '', identityName: 'carol', limit: 0 });
      assert.deepEqual(sessions.map((s) => s.id), [late.sessionId]);
    });
  });

  describe('integrity: verification names exactly what was changed', () => {
    const appendAndProject = async (script: GatewaySessionScript) => {
      await proc!.eventLog.append(script.records());
      await expectEventually(async () => {
        const { session } = await audit().getSession({ id: script.sessionId });
        assert.equal(session!.lastSequence, script.events.length);
      });
    };
    const checkpointed = async (script: GatewaySessionScript) => {
      await expectEventually(
        async () => {
          const { rows } = await db.query(`SELECT 1 FROM audit.checkpoint_heads WHERE session_id = $1 AND sequence = $2`, [script.sessionId, script.events.length]);
          assert.equal(rows.length, 1);
        },
        { description: 'a checkpoint signed over the session' },
      );
    };
    const session = (start: string) =>
      new GatewaySessionScript(randomUUID(), Date.parse(start))
        .started({ identityName: 'ci-agent', target: 'billing' })
        .requested('x1', 'SELECT * FROM invoices')
        .completed('x1', { commandTag: 'SELECT 2', rows: 2 })
        .requested('x2', 'DELETE FROM invoices', { effect: 'deny', rule: 'no-deletes', reason: 'no deletes' })
        .completed('x2', { sqlstate: '42501', errorMessage: 'no deletes' })
        .ended();
    /** As someone with write access to the log's table would, past its append-only trigger. */
    const rewriteLogEvent = async (event: CloudEvent) => {
      await db.query(`ALTER TABLE tracegate_log.events DISABLE TRIGGER events_append_only`);
      try {
        await db.query(`UPDATE tracegate_log.events SET event = $2::jsonb WHERE event_id = $1`, [event.id, JSON.stringify(event)]);
      } finally {
        await db.query(`ALTER TABLE tracegate_log.events ENABLE TRIGGER events_append_only`);
      }
    };
    const tampered: string[] = [];

    it('finds an untouched session intact, every event checked, under a signed checkpoint', async () => {
      const untouched = session('2026-11-22T03:00:00Z');
      await appendAndProject(untouched);
      await checkpointed(untouched);
      assert.deepEqual(await audit().verifySession({ id: untouched.sessionId }), { intact: true, eventsChecked: untouched.events.length, problems: [] });
    });

    it('names the session, statement and field of each stored row that was changed or deleted', async () => {
      const script = session('2026-11-22T03:10:00Z');
      await appendAndProject(script);
      await db.query(`UPDATE audit.sessions SET identity_name = 'mallory' WHERE id = $1`, [script.sessionId]);
      await db.query(`UPDATE audit.statements SET effect = 'allow', reason = '' WHERE session_id = $1 AND statement_id = 'x2'`, [script.sessionId]);
      const verdict = await audit().verifySession({ id: script.sessionId });
      assert.equal(verdict.intact, false);
      assert.deepEqual(verdict.problems, [
        `session ${script.sessionId}: identityName is "mallory" in the projection but "ci-agent" on the log`,
        'statement 2 (id x2): effect is "allow" in the projection but "deny" on the log',
        'statement 2 (id x2): reason is "" in the projection but "no deletes" on the log',
      ]);
      await db.query(`DELETE FROM audit.statements WHERE session_id = $1 AND statement_id = 'x1'`, [script.sessionId]);
      const deleted = await audit().verifySession({ id: script.sessionId });
      assert.ok(deleted.problems.includes('statement 1 (id x1) is on the log but has no projected row: the row was deleted'), deleted.problems.join('\n'));
      tampered.push(script.sessionId);
    });

    it('names the sequence and field of an event rewritten on the log', async () => {
      const script = session('2026-11-22T03:20:00Z');
      await appendAndProject(script);
      const original = script.events[4]!; // statement_requested of x2
      assert.equal(original.sequence, 5);
      await rewriteLogEvent({ ...original, data: { ...(original.data as object), text: 'SELECT 1' } });
      const verdict = await audit().verifySession({ id: script.sessionId });
      assert.equal(verdict.intact, false);
      assert.deepEqual(verdict.problems, [
        `the log: event ${original.id} (sequence 5) was altered: its content no longer matches its hash`,
        `sequence 5 (event ${original.id}): data.text is "SELECT 1" on the log but was "DELETE FROM invoices" when the projection received it: the log was rewritten`,
        'statement 2 (id x2): text is "DELETE FROM invoices" in the projection but "SELECT 1" on the log',
      ]);
      tampered.push(script.sessionId);
    });

    it('catches a whole history rewritten with a recomputed chain, copy and rows by the signed checkpoint, and a forged checkpoint by its signature', async () => {
      const script = session('2026-11-22T03:30:00Z');
      await appendAndProject(script);
      await checkpointed(script);
      // Re-seal the whole session with statement x2's text changed: every hash is recomputed, so
      // the chain is valid again; the projection's copy and rows are changed to agree.
      let head: ChainHead = GENESIS;
      const rewritten = script.events.map((event) => {
        const data = event.sequence === 5 ? { ...(event.data as object), text: 'SELECT 1' } : event.data;
        const sealed = sealEvent({ type: event.type, subject: event.subject, source: event.source, data, time: new Date(event.time), id: event.id }, head);
        head = headOf(sealed);
        return sealed;
      });
      for (const event of rewritten) {
        await rewriteLogEvent(event);
        await db.query(`UPDATE audit.session_events SET event = $2::jsonb, hash = $3 WHERE event_id = $1`, [event.id, JSON.stringify(event), event.hash]);
      }
      await db.query(`UPDATE audit.statements SET text = 'SELECT 1' WHERE session_id = $1 AND statement_id = 'x2'`, [script.sessionId]);
      const last = rewritten.at(-1)!;
      const { rows } = await db.query<{ checkpoint_id: string }>(`SELECT checkpoint_id FROM audit.checkpoint_heads WHERE session_id = $1`, [script.sessionId]);
      const checkpointId = rows[0]!.checkpoint_id;
      const verdict = await audit().verifySession({ id: script.sessionId });
      assert.deepEqual(verdict.problems, [
        `sequence ${last.sequence} (event ${last.id}) hashes to ${last.hash.slice(0, 12)}… but checkpoint ${checkpointId} signed ${script.events.at(-1)!.hash.slice(0, 12)}…: the history was rewritten after it was checkpointed`,
      ]);
      // Changing the checkpoint to sign the new head breaks its Ed25519 signature.
      await db.query(
        `UPDATE audit.checkpoints SET event = jsonb_set(event, '{data,heads}', (
           SELECT jsonb_agg(CASE WHEN h->>'sessionId' = $2 THEN jsonb_set(h, '{hash}', to_jsonb($3::text)) ELSE h END) FROM jsonb_array_elements(event->'data'->'heads') h))
         WHERE id = $1`,
        [checkpointId, script.sessionId, last.hash],
      );
      const forged = await audit().verifySession({ id: script.sessionId });
      assert.match(forged.problems.join('\n'), new RegExp(`^checkpoint ${checkpointId} does not verify against checkpoint key [0-9a-f]{16}: the checkpoint was altered or forged$`));
      assert.equal(forged.problems.length, 1);
      tampered.push(script.sessionId);
    });

    it('keeps the checkpoints one chain on the log across a dropped and rebuilt schema', async () => {
      const { rows } = await db.query<{ event: CloudEvent }>(`SELECT event FROM tracegate_log.events WHERE topic = 'tracegate.audit.v1' AND key = 'session-checkpoints' ORDER BY position`);
      assert.ok(rows.length >= 2, `${rows.length} checkpoints signed`);
      assert.deepEqual(verifyChain(rows.map((r) => r.event)), []);
      const { rows: stored } = await db.query<{ n: string }>(`SELECT count(*) AS n FROM audit.checkpoints`);
      assert.equal(Number(stored[0]!.n), rows.length, 'the rebuilt schema has every checkpoint back');
    });

    it('reports tampered sessions from the periodic verifier as a metric', async () => {
      assert.equal(tampered.length, 3);
      await expectEventually(async () => assert.equal(await metric('tracegate_audit_sessions_failing_verification', ''), 3), {
        description: 'the periodic verifier to find the three tampered sessions',
      });
    });
  });
});
