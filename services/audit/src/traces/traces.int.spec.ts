import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { status as GrpcStatus, type ServiceError } from '@grpc/grpc-js';
import pg from 'pg';
import { auditV1, SERVICE_PROTOS, timestampOf } from '@tracegate/contracts';
import { TOPICS, type CloudEvent, type Subscription } from '@tracegate/events';
import { grpcClient, startServices, type RunningProcess } from '@tracegate/runtime';
import { expectEventually, freePort, startPostgres, type PostgresServer } from '@tracegate/test-harness';
import { auditService } from '../audit.definition.js';

const TOKEN = randomBytes(32).toString('base64url');
const MAX_BYTES = 8192;

// What an agent might paste into its reasoning: an AWS access key id and a database URL with its
// password. Neither may be stored or emitted.
const AWS_KEY_ID = 'AKIAIOSFODNN7EXAMPLE';
const DB_PASSWORD = 'hunter2-Sup3rSecret';
const SECRETS = [AWS_KEY_ID, DB_PASSWORD];

function grpcError(code: GrpcStatus, pattern?: RegExp) {
  return (error: ServiceError) => {
    assert.equal(error.code, code, `expected status ${GrpcStatus[code]}, got ${GrpcStatus[error.code]}: ${error.details}`);
    if (pattern) assert.match(error.details, pattern);
    return true;
  };
}

const leakyTrace = {
  agent: { name: 'billing-bot', model: 'gpt-5', version: '1.4.0' },
  prompt: `Reconcile invoices; the key is aws_access_key_id=${AWS_KEY_ID}`,
  steps: [
    { thought: 'connect to the ledger', tool: 'psql', input: `postgresql://ledger:${DB_PASSWORD}@ledger.internal:5432/ledger`, outputSummary: '3 unpaid invoices' },
  ],
  confidence: 0.72,
  sources: [`https://ledger:${DB_PASSWORD}@wiki.internal/runbook`],
  tags: ['finance', 'reconcile'],
};

describe('audit traces: ingestion, ownership and reader grants over gRPC, on real PostgreSQL', () => {
  let postgres: PostgresServer;
  let proc: RunningProcess;
  let db: pg.Client;
  let subscription: Subscription;
  const events: CloudEvent[] = [];
  const clients: { close(): void }[] = [];
  let address: string;
  let databaseUrl: string;
  let environment: Record<string, string>;
  const start = async () => {
    proc = await startServices([auditService], { component: 'tracegate traces test', databaseUrl, env: environment });
  };

  const traces = (metadata: Record<string, string> = { 'x-tracegate-internal-token': TOKEN }) => {
    const client = grpcClient<auditV1.TraceServiceClient>(SERVICE_PROTOS.audit.files[0], 'tracegate.audit.v1.TraceService', address, { metadata });
    clients.push(client);
    return client;
  };
  const grants = (metadata: Record<string, string> = { 'x-tracegate-internal-token': TOKEN }) => {
    const client = grpcClient<auditV1.ReaderGrantServiceClient>(SERVICE_PROTOS.audit.files[0], 'tracegate.audit.v1.ReaderGrantService', address, { metadata });
    clients.push(client);
    return client;
  };
  const forGateway = (traceJson: string, identity = { id: 'key-billing-bot', name: 'billing-bot' }, session = { sessionId: '', target: '' }) =>
    traces().submit({ trace: undefined, traceJson, identityId: identity.id, identityName: identity.name, ...session });

  before(async () => {
    postgres = await startPostgres();
    databaseUrl = await postgres.createDatabase();
    const grpcPort = await freePort();
    address = `127.0.0.1:${grpcPort}`;
    environment = {
      TRACEGATE_AUDIT_GRPC_PORT: String(grpcPort),
      TRACEGATE_AUDIT_METRICS_PORT: String(await freePort()),
      TRACEGATE_INTERNAL_TOKEN: TOKEN,
      TRACEGATE_TRACE_MAX_BYTES: String(MAX_BYTES),
      // Nothing listens here: API-key calls find the broker down.
      TRACEGATE_BROKER_ADDRESS: `127.0.0.1:${await freePort()}`,
      TRACEGATE_LOG_LEVEL: 'silent',
    };
    await start();
    db = new pg.Client({ connectionString: databaseUrl });
    await db.connect();
    subscription = await proc.eventLog.subscribe({
      group: `traces-test-${randomUUID()}`,
      topics: [TOPICS.traces.name, TOPICS.audit.name],
      handler: async ({ event }) => {
        events.push(event);
      },
    });
  });

  after(async () => {
    for (const client of clients) client.close();
    await subscription?.stop();
    await db?.end();
    await proc?.stop();
    await postgres?.stop();
  });

  it('stores and emits a trace submitted for an identity with its secrets masked, and answers its features', async () => {
    const sessionId = randomUUID();
    const { id, features } = await forGateway(JSON.stringify(leakyTrace), undefined, { sessionId, target: 'billing' });
    assert.match(id, /^t-[0-9a-f-]{36}$/);
    assert.deepEqual(features, { present: true, confidence: 0.72, model: 'gpt-5', tags: ['finance', 'reconcile'] });

    const { rows } = await db.query(`SELECT identity_id, identity_name, agent_name, session_id, size_bytes, document::text AS document FROM audit.traces WHERE id = $1`, [id]);
    const row = rows[0];
    assert.ok(row, 'the trace is stored');
    assert.equal(row.identity_id, 'key-billing-bot');
    assert.equal(row.agent_name, 'billing-bot');
    assert.equal(row.session_id, sessionId);
    assert.equal(row.size_bytes, Buffer.byteLength(JSON.stringify(leakyTrace)));
    for (const secret of SECRETS) assert.ok(!row.document.includes(secret), `the stored trace holds ${secret}: ${row.document}`);
    const stored = auditV1.Trace.fromJSON(JSON.parse(row.document));
    // What is not secret survives masking, so the trace still says what the agent did.
    assert.match(stored.prompt, /^Reconcile invoices; the key is aws_access_key_id=\S+$/);
    assert.equal(stored.steps[0]?.thought, 'connect to the ledger');
    assert.equal(stored.steps[0]?.outputSummary, '3 unpaid invoices');
    assert.match(stored.steps[0]?.input ?? '', /ledger\.internal/);

    const links = await db.query(`SELECT session_id, target FROM audit.trace_links WHERE trace_id = $1`, [id]);
    assert.deepEqual(links.rows, [{ session_id: sessionId, target: 'billing' }]);

    await expectEventually(() => assert.ok(events.some((e) => e.subject === id)), { description: 'the trace event on tracegate.traces.v1' });
    const event = events.find((e) => e.subject === id)!;
    assert.equal(event.type, 'dev.tracegate.trace.submitted.v1');
    assert.equal(event.sequence, 1);
    const emitted = JSON.stringify(event);
    for (const secret of SECRETS) assert.ok(!emitted.includes(secret), `the trace event carries ${secret}`);
    assert.deepEqual((event.data as { trace: unknown }).trace, JSON.parse(row.document));
  });

  it('takes a Trace message too, and refuses traces above TRACEGATE_TRACE_MAX_BYTES or malformed, storing nothing', async () => {
    const message = auditV1.Trace.fromJSON({ agent: { name: 'billing-bot', model: 'none' }, prompt: 'count invoices', confidence: 0.9 });
    const { id } = await traces().submit({ trace: message, traceJson: '', identityId: 'key-billing-bot', identityName: 'billing-bot', sessionId: '', target: '' });
    assert.match(id, /^t-/);

    const before = Number((await db.query(`SELECT count(*) FROM audit.traces`)).rows[0].count);
    const huge = JSON.stringify({ ...leakyTrace, steps: [{ thought: 'dump', outputSummary: 'x'.repeat(MAX_BYTES) }] });
    await assert.rejects(forGateway(huge), grpcError(GrpcStatus.RESOURCE_EXHAUSTED, /^the trace is 8\.\d KiB \(\d+ bytes\), more than the 8\.0 KiB this service accepts \(TRACEGATE_TRACE_MAX_BYTES\)/));
    await assert.rejects(
      traces().submit({ trace: { ...message, prompt: 'y'.repeat(MAX_BYTES) }, traceJson: '', identityId: 'key-billing-bot', identityName: 'billing-bot', sessionId: '', target: '' }),
      grpcError(GrpcStatus.RESOURCE_EXHAUSTED, /TRACEGATE_TRACE_MAX_BYTES/),
    );
    await assert.rejects(forGateway('{"confidence": 2}'), grpcError(GrpcStatus.INVALID_ARGUMENT, /confidence 2 is not between 0 and 1/));
    await assert.rejects(forGateway('{"prompt": "x", "owner": "root"}'), grpcError(GrpcStatus.INVALID_ARGUMENT, /trace field 'owner' is unknown/));
    await assert.rejects(
      traces().submit({ trace: undefined, traceJson: '{}', identityId: '', identityName: '', sessionId: '', target: '' }),
      grpcError(GrpcStatus.INVALID_ARGUMENT, /identity_id and identity_name are required with the internal token/),
    );
    assert.equal(Number((await db.query(`SELECT count(*) FROM audit.traces`)).rows[0].count), before);
  });

  it('resolves a trace for the identity that submitted it and refuses it to any other, or an unknown id', async () => {
    const { id } = await forGateway(JSON.stringify(leakyTrace));
    const sessionId = randomUUID();
    const resolved = await traces().resolveTrace({ traceId: id, identityId: 'key-billing-bot', sessionId, target: 'reporting' });
    assert.deepEqual(resolved, { features: { present: true, confidence: 0.72, model: 'gpt-5', tags: ['finance', 'reconcile'] }, agentName: 'billing-bot' });
    // Where it was attached is kept: a reader grant scoped by target covers it.
    assert.deepEqual((await db.query(`SELECT target FROM audit.trace_links WHERE trace_id = $1`, [id])).rows, [{ target: 'reporting' }]);

    await assert.rejects(
      traces().resolveTrace({ traceId: id, identityId: 'key-mallory', sessionId: '', target: '' }),
      grpcError(GrpcStatus.PERMISSION_DENIED, new RegExp(`^trace ${id} was submitted by another identity; an agent can only attach its own traces$`)),
    );
    const unknown = `t-${randomUUID()}`;
    await assert.rejects(traces().resolveTrace({ traceId: unknown, identityId: 'key-billing-bot', sessionId: '', target: '' }), grpcError(GrpcStatus.NOT_FOUND, /^no trace has id 't-.*submit the trace first/));
    await assert.rejects(traces().resolveTrace({ traceId: "x'; DROP TABLE audit.traces; --", identityId: 'key-billing-bot', sessionId: '', target: '' }), grpcError(GrpcStatus.NOT_FOUND));
    // Only tracegate's own services resolve traces.
    await assert.rejects(traces({}).resolveTrace({ traceId: id, identityId: 'key-billing-bot', sessionId: '', target: '' }), grpcError(GrpcStatus.UNAUTHENTICATED, /ResolveTrace is for tracegate's own services/));
    await assert.rejects(traces({ 'x-tracegate-internal-token': `${TOKEN}x` }).resolveTrace({ traceId: id, identityId: 'key-billing-bot', sessionId: '', target: '' }), grpcError(GrpcStatus.UNAUTHENTICATED, /wrong/));
  });

  it('asks for credentials in a sentence, and answers UNAVAILABLE when the broker cannot check an API key', async () => {
    await assert.rejects(forGatewayWithout(), grpcError(GrpcStatus.UNAUTHENTICATED, /^this call needs an API key in the gRPC metadata 'x-tracegate-api-key' \(and, optionally, its name in 'x-tracegate-identity'\)/));
    const agent = traces({ 'x-tracegate-identity': 'billing-bot', 'x-tracegate-api-key': 'tg_x_y' });
    await assert.rejects(agent.submit({ trace: undefined, traceJson: '{}', identityId: '', identityName: '', sessionId: '', target: '' }), grpcError(GrpcStatus.UNAVAILABLE, /broker did not answer/));
    // The internal token reads no traces: reading needs a reader's own key and grant.
    await assert.rejects(traces().getTrace({ id: `t-${randomUUID()}` }), grpcError(GrpcStatus.PERMISSION_DENIED, /needs a reader's own API key/));

    function forGatewayWithout() {
      return traces({}).submit({ trace: undefined, traceJson: '{}', identityId: '', identityName: '', sessionId: '', target: '' });
    }
  });

  it('creates, lists and revokes reader grants, each change an event on tracegate.audit.v1', async () => {
    const from = timestampOf(new Date('2026-11-01T00:00:00Z'));
    const { grant } = await grants().createReaderGrant({ reader: 'auditor', agent: 'billing-bot', target: '', from, until: undefined, expiresInSeconds: 3600, reason: 'INC-42' });
    assert.ok(grant);
    assert.match(grant.id, /^rg-/);
    assert.equal(grant.reader, 'auditor');
    assert.deepEqual(grant.from, from);
    assert.equal(grant.until, null);
    const expiresIn = grant.expiresAt!.seconds - grant.createdAt!.seconds;
    assert.ok(expiresIn >= 3599 && expiresIn <= 3600, String(expiresIn));

    const second = (await grants().createReaderGrant({ reader: 'auditor', agent: '', target: 'billing', from: undefined, until: undefined, expiresInSeconds: 60, reason: '' })).grant!;
    const other = (await grants().createReaderGrant({ reader: 'someone', agent: 'billing-bot', target: '', from: undefined, until: undefined, expiresInSeconds: 60, reason: '' })).grant!;
    const listed = await grants().listReaderGrants({ reader: 'auditor', includeInactive: false });
    assert.deepEqual(listed.grants.map((g) => g.id), [second.id, grant.id]);

    const revoked = (await grants().revokeReaderGrant({ id: second.id })).grant!;
    assert.ok(revoked.revokedAt);
    const again = (await grants().revokeReaderGrant({ id: second.id })).grant!;
    assert.deepEqual(again.revokedAt, revoked.revokedAt, 'a second revocation keeps the first');
    assert.deepEqual((await grants().listReaderGrants({ reader: 'auditor', includeInactive: false })).grants.map((g) => g.id), [grant.id]);
    assert.deepEqual((await grants().listReaderGrants({ reader: '', includeInactive: true })).grants.map((g) => g.id).sort(), [grant.id, second.id, other.id].sort());

    await assert.rejects(grants().revokeReaderGrant({ id: `rg-${randomUUID()}` }), grpcError(GrpcStatus.NOT_FOUND, /no reader grant has id/));
    const bad = (overrides: Partial<auditV1.CreateReaderGrantRequest>) =>
      grants().createReaderGrant({ reader: 'auditor', agent: 'billing-bot', target: '', from: undefined, until: undefined, expiresInSeconds: 60, reason: '', ...overrides });
    await assert.rejects(bad({ target: 'billing' }), grpcError(GrpcStatus.INVALID_ARGUMENT, /^scope must be exactly one of agent .* or target/));
    await assert.rejects(bad({ expiresInSeconds: 0 }), grpcError(GrpcStatus.INVALID_ARGUMENT, /expires_in_seconds must be from 1 second to 30 days/));
    await assert.rejects(bad({ from: timestampOf(new Date('2026-11-02T00:00:00Z')), until: timestampOf(new Date('2026-11-01T00:00:00Z')) }), grpcError(GrpcStatus.INVALID_ARGUMENT, /window would be empty/));
    await assert.rejects(bad({ reader: '' }), grpcError(GrpcStatus.INVALID_ARGUMENT, /^reader is required/));
    await assert.rejects(grants({}).listReaderGrants({ reader: '', includeInactive: false }), grpcError(GrpcStatus.UNAUTHENTICATED, /internal token/));

    await expectEventually(
      () => {
        const auditor = events.filter((e) => e.subject === 'readers/auditor');
        assert.deepEqual(auditor.map((e) => [e.type, e.sequence, (e.data as { grantId: string }).grantId]), [
          ['dev.tracegate.auditaccess.granted.v1', 1, grant.id],
          ['dev.tracegate.auditaccess.granted.v1', 2, second.id],
          ['dev.tracegate.auditaccess.revoked.v1', 3, second.id],
        ]);
        assert.equal(auditor[1]!.prevhash, auditor[0]!.hash, 'one chain per reader');
      },
      { description: 'grant events on the audit topic' },
    );
  });
  it('rebuilds traces, links, grants and the readers\' chains from the log after the audit schema is dropped', async () => {
    const sessionId = randomUUID();
    const { id } = await forGateway(JSON.stringify(leakyTrace), undefined, { sessionId, target: 'billing' });
    const rows = async () => ({
      traces: (await db.query(`SELECT id, identity_id, identity_name, agent_name, model, confidence, tags, session_id, size_bytes, document, event_id, created_at FROM audit.traces ORDER BY id`)).rows,
      links: (await db.query(`SELECT trace_id, session_id, target FROM audit.trace_links WHERE session_id = $1`, [sessionId])).rows,
      grants: (await db.query(`SELECT * FROM audit.reader_grants ORDER BY id`)).rows,
      chains: (await db.query(`SELECT * FROM audit.written_event_chains ORDER BY subject`)).rows,
    });
    const live = await rows();
    assert.ok(live.traces.some((t: { id: string }) => t.id === id));
    assert.ok(live.grants.length >= 3 && live.chains.length >= 2);

    await proc.stop();
    await db.query(`DROP SCHEMA audit CASCADE`);
    await start();
    await expectEventually(async () => assert.deepEqual(await rows(), live), { description: 'the projection rebuilt from tracegate.traces.v1 and tracegate.audit.v1', timeoutMs: 30_000 });

    // The next event of a reader links to the last one on the log, not to a fresh chain.
    const before = live.chains.find((c: { subject: string }) => c.subject === 'readers/auditor') as { sequence: string };
    await grants().createReaderGrant({ reader: 'auditor', agent: 'billing-bot', target: '', from: undefined, until: undefined, expiresInSeconds: 60, reason: '' });
    const after = (await db.query(`SELECT sequence::int AS sequence FROM audit.written_event_chains WHERE subject = 'readers/auditor'`)).rows[0] as { sequence: number };
    assert.equal(after.sequence, Number(before.sequence) + 1);
  });
});
