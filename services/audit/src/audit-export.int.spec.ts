import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { status as GrpcStatus, type ClientReadableStream, type ServiceError } from '@grpc/grpc-js';
import pg from 'pg';
import { approvalsV1, brokerV1, SERVICE_PROTOS, timestampOf, type auditV1 } from '@tracegate/contracts';
import { grpcClient, INTERNAL_TOKEN_METADATA, startServices, type PromiseClient, type RunningProcess } from '@tracegate/runtime';
import { expectEventually, freePort, startPostgres, type PostgresServer } from '@tracegate/test-harness';
import { auditService } from './audit.definition.js';
import { GatewaySessionScript } from './domain/session-events.testing.js';
import { startServiceProcess, type ServiceProcess } from './testing/service-process.testing.js';

const TOKEN = randomBytes(32).toString('base64url');
const API_KEY = 'x-tracegate-api-key';

/** A server stream read to its end: every message, and how it ended. */
function collect<T>(stream: ClientReadableStream<T>): { messages: T[]; ended: Promise<ServiceError | undefined> } {
  const messages: T[] = [];
  stream.on('data', (m: T) => messages.push(m));
  const ended = new Promise<ServiceError | undefined>((resolve) => {
    stream.on('error', (error: ServiceError) => resolve(error));
    stream.on('end', () => resolve(undefined));
  });
  return { messages, ended };
}

describe('audit export: sessions exported only once a reviewer approves, with real approvals and broker services over one PostgreSQL', () => {
  let postgres: PostgresServer;
  let databaseUrl: string;
  let broker: ServiceProcess | undefined;
  let approvalsProcess: ServiceProcess | undefined;
  let proc: RunningProcess | undefined;
  let db: pg.Client;
  let identities: PromiseClient<brokerV1.IdentityServiceClient>;
  let approvalsAddress: string;
  let auditAddress: string;
  const clients: { close(): void }[] = [];
  const keys: Record<string, { apiKey: string; id: string }> = {};

  const audit = (metadata: Record<string, string>) => {
    const client = grpcClient<auditV1.AuditServiceClient>(SERVICE_PROTOS.audit.files[0], 'tracegate.audit.v1.AuditService', auditAddress, { metadata });
    clients.push(client);
    return client;
  };
  const reviewer = (name: string) => {
    const client = grpcClient<approvalsV1.ApprovalServiceClient>(SERVICE_PROTOS.approvals.files[0], 'tracegate.approvals.v1.ApprovalService', approvalsAddress, {
      metadata: { [API_KEY]: keys[name]!.apiKey },
    });
    clients.push(client);
    return client;
  };
  const exportAs = (name: string, request: Partial<auditV1.ExportRequest>) => collect(audit({ [API_KEY]: keys[name]!.apiKey }).stream<auditV1.ExportResponse>('export', request));
  const pendingRequest = async (messages: auditV1.ExportResponse[]) => {
    await expectEventually(async () => assert.ok(messages.length >= 1, 'the export named its approval request'));
    return messages[0]!;
  };
  const accessEvents = async (reader: string) =>
    (
      await db.query<{ type: string; data: Record<string, unknown> }>(
        `SELECT event->>'type' AS type, event->'data' AS data FROM tracegate_log.events WHERE topic = 'tracegate.audit.v1' AND key = $1 AND event->'data'->>'kind' = 'export' ORDER BY position`,
        [reader],
      )
    ).rows;

  // Two sessions inside the window (one with masked result rows), one before it.
  const early = new GatewaySessionScript(randomUUID(), Date.parse('2026-11-20T09:00:00Z')).started({ identityName: 'ci-agent', target: 'billing' }).requested('e1', 'SELECT 1').completed('e1', { commandTag: 'SELECT 1', rows: 1 }).ended();
  const first = new GatewaySessionScript(randomUUID(), Date.parse('2026-11-21T10:00:00Z'))
    .started({ identityName: 'ci-agent', target: 'crm' })
    .requested('f1', 'SELECT email FROM customers WHERE id = $1', {}, { protocol: 'extended', parameterCount: 1, parameters: ['<masked:id>'] })
    .result('f1', 0, [['<email:7f3a>']], ['email'])
    .completed('f1', { commandTag: 'SELECT 1', rows: 1, masked: { email: 1 } })
    .ended();
  const second = new GatewaySessionScript(randomUUID(), Date.parse('2026-11-21T11:00:00Z')).started({ identityName: 'alice', identityKind: 'human', target: 'billing' }).requested('s1', 'DELETE FROM invoices', { effect: 'deny', rule: 'no-deletes', reason: 'no deletes' }).ended();
  const window = { since: timestampOf(new Date('2026-11-21T00:00:00Z')), until: timestampOf(new Date('2026-11-22T00:00:00Z')) };

  before(async () => {
    postgres = await startPostgres();
    databaseUrl = await postgres.createDatabase();
    const brokerAddress = `127.0.0.1:${await freePort()}`;
    approvalsAddress = `127.0.0.1:${await freePort()}`;
    identities = grpcClient(SERVICE_PROTOS.broker.files[0], 'tracegate.broker.v1.IdentityService', brokerAddress, { metadata: { [INTERNAL_TOKEN_METADATA]: TOKEN }, deadlineMs: 2_000 });
    broker = await startServiceProcess(
      'broker',
      {
        DATABASE_URL: databaseUrl,
        TRACEGATE_BROKER_GRPC_PORT: brokerAddress.split(':')[1]!,
        TRACEGATE_BROKER_METRICS_PORT: String(await freePort()),
        TRACEGATE_BROKER_KEYS: `k1:${randomBytes(32).toString('base64')}`,
        TRACEGATE_INTERNAL_TOKEN: TOKEN,
      },
      async () => (await identities.listKeys({}), true),
    );
    const gatewayView = grpcClient<approvalsV1.ApprovalServiceClient>(SERVICE_PROTOS.approvals.files[0], 'tracegate.approvals.v1.ApprovalService', approvalsAddress, {
      metadata: { [INTERNAL_TOKEN_METADATA]: TOKEN },
      deadlineMs: 2_000,
    });
    clients.push(gatewayView);
    approvalsProcess = await startServiceProcess(
      'approvals',
      {
        DATABASE_URL: databaseUrl,
        TRACEGATE_APPROVALS_GRPC_PORT: approvalsAddress.split(':')[1]!,
        TRACEGATE_APPROVALS_METRICS_PORT: String(await freePort()),
        TRACEGATE_BROKER_ADDRESS: brokerAddress,
        TRACEGATE_INTERNAL_TOKEN: TOKEN,
      },
      async () => (await gatewayView.list({ state: approvalsV1.ApprovalState.APPROVAL_STATE_UNSPECIFIED }), true),
    );
    const grpcPort = await freePort();
    auditAddress = `127.0.0.1:${grpcPort}`;
    proc = await startServices([auditService], {
      component: 'tracegate audit export test',
      databaseUrl,
      env: {
        TRACEGATE_AUDIT_GRPC_PORT: String(grpcPort),
        TRACEGATE_AUDIT_METRICS_PORT: String(await freePort()),
        TRACEGATE_INTERNAL_TOKEN: TOKEN,
        TRACEGATE_BROKER_ADDRESS: brokerAddress,
        TRACEGATE_APPROVALS_ADDRESS: approvalsAddress,
        TRACEGATE_AUDIT_VERIFY_INTERVAL_MS: '0',
        TRACEGATE_LOG_LEVEL: 'silent',
      },
    });
    for (const [name, groups] of [['dana', ['auditors']], ['bob', ['auditors']]] as const) {
      const created = await identities.createKey({ name, kind: brokerV1.IdentityKind.IDENTITY_KIND_HUMAN, groups: [...groups] });
      keys[name] = { apiKey: created.secret, id: created.key!.id };
    }
    db = new pg.Client({ connectionString: databaseUrl });
    await db.connect();
    await proc.eventLog.append([...early.records(), ...first.records(), ...second.records()]);
    const internal = audit({ [INTERNAL_TOKEN_METADATA]: TOKEN });
    await expectEventually(async () => assert.equal((await internal.listSessions({ target: '', identityId: '', identityName: '', limit: 0 })).sessions.length, 3));
  });

  after(async () => {
    for (const client of clients) client.close();
    identities?.close();
    await db?.end();
    await proc?.stop();
    await approvalsProcess?.stop();
    await broker?.stop();
    await postgres?.stop();
  });

  it('opens an approval request in the exporter\'s name, which the exporter cannot approve; once another auditor approves, streams the window\'s sessions in start order and records the export', async () => {
    const { messages, ended } = exportAs('dana', window);
    const pending = await pendingRequest(messages);
    assert.equal(pending.approvalState, 'pending');
    assert.equal(pending.reviewerGroup, 'auditors');
    assert.equal(pending.session, null, 'nothing is exported before the approval');

    const { request } = await reviewer('bob').get({ id: pending.approvalRequestId });
    assert.equal(request!.requesterName, 'dana');
    assert.equal(request!.rule, 'audit-export');
    assert.equal(request!.reviewerGroup, 'auditors');
    assert.equal(
      request!.maskedCommand,
      'dana exports the audit trail: 2 sessions started from 2026-11-21T00:00:00.000Z until 2026-11-22T00:00:00.000Z, with their statements, masked parameters and recorded (masked) result rows, as JSON lines',
    );

    await assert.rejects(
      reviewer('dana').decide({ id: pending.approvalRequestId, reviewerId: '', verdict: approvalsV1.Verdict.VERDICT_APPROVE, reason: '' }),
      (error: ServiceError) => {
        assert.equal(error.code, GrpcStatus.PERMISSION_DENIED, error.details);
        assert.match(error.details, /you requested this change; another member of 'auditors' must approve it/);
        return true;
      },
    );
    assert.equal(messages.length, 1, 'still waiting after the refused self-approval');

    await reviewer('bob').decide({ id: pending.approvalRequestId, reviewerId: '', verdict: approvalsV1.Verdict.VERDICT_APPROVE, reason: '' });
    assert.equal(await ended, undefined);
    const exported = messages.filter((m) => m.session);
    assert.deepEqual(exported.map((m) => [m.session!.session!.id, m.sessionsExported, m.sessionsTotal]), [
      [first.sessionId, 1, 2],
      [second.sessionId, 2, 2],
    ]);
    assert.deepEqual(messages.map((m) => m.approvalRequestId), messages.map(() => pending.approvalRequestId));
    assert.deepEqual(messages.at(-1)!.approvedBy, ['bob']);
    assert.equal(messages.at(-1)!.done, true);
    const [statement] = exported[0]!.session!.statements;
    assert.deepEqual([statement!.maskedText, statement!.parameters.map((p) => p.text), statement!.masked, statement!.resultRows.map((r) => r.values.map((v) => v.text))], [
      'SELECT email FROM customers WHERE id = $1',
      ['<masked:id>'],
      { email: 1 },
      [['<email:7f3a>']],
    ]);
    assert.equal(exported[1]!.session!.statements[0]!.effect, 'deny');

    const events = await accessEvents('dana');
    assert.deepEqual(events.map((e) => [e.type, e.data.id, e.data.sessions, e.data.approvedBy, e.data.since]), [
      ['dev.tracegate.auditaccess.exported.v1', pending.approvalRequestId, 2, ['bob'], '2026-11-21T00:00:00.000Z'],
    ]);
  });

  it('refuses the export with PERMISSION_DENIED and the reviewer\'s reason when it is denied, sends no session and records the refusal', async () => {
    const { messages, ended } = exportAs('dana', { since: window.since });
    const pending = await pendingRequest(messages);
    await reviewer('bob').decide({ id: pending.approvalRequestId, reviewerId: '', verdict: approvalsV1.Verdict.VERDICT_DENY, reason: 'not during the incident' });
    const error = await ended;
    assert.equal(error?.code, GrpcStatus.PERMISSION_DENIED, error?.details);
    assert.equal(error!.details, `export request ${pending.approvalRequestId} was denied by bob: not during the incident; nothing was exported`);
    assert.deepEqual(messages.filter((m) => m.session), []);
    const refused = (await accessEvents('dana')).at(-1)!;
    assert.deepEqual([refused.type, refused.data.id, refused.data.reason], ['dev.tracegate.auditaccess.refused.v1', pending.approvalRequestId, error!.details]);
  });

  it('pages through a large window in start order (ties by id), every session once', async () => {
    // 230 sessions, three at each instant: more than two pages of the export's reads.
    const many = Array.from({ length: 230 }, (_, i) => new GatewaySessionScript(randomUUID(), Date.parse('2026-10-01T00:00:00Z') + Math.floor(i / 3) * 1000).started().ended());
    await proc!.eventLog.append(many.flatMap((script) => script.records()));
    const internal = audit({ [INTERNAL_TOKEN_METADATA]: TOKEN });
    await expectEventually(async () => assert.equal((await internal.listSessions({ target: '', identityId: '', identityName: '', limit: 1000 })).sessions.length, 233));
    const { messages, ended } = exportAs('dana', { since: timestampOf(new Date('2026-10-01T00:00:00Z')), until: timestampOf(new Date('2026-10-02T00:00:00Z')) });
    const pending = await pendingRequest(messages);
    await reviewer('bob').decide({ id: pending.approvalRequestId, reviewerId: '', verdict: approvalsV1.Verdict.VERDICT_APPROVE, reason: '' });
    assert.equal(await ended, undefined);
    const expected = many.map((script) => ({ id: script.sessionId, at: Date.parse(script.events[0]!.time) })).sort((a, b) => a.at - b.at || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    assert.deepEqual(messages.filter((m) => m.session).map((m) => m.session!.session!.id), expected.map((e) => e.id));
    assert.equal(messages.at(-1)!.sessionsExported, 230);
  });

  it('withdraws the approval request when the exporter stops waiting', async () => {
    const stream = audit({ [API_KEY]: keys.dana!.apiKey }).stream<auditV1.ExportResponse>('export', window);
    const { messages, ended } = collect(stream);
    const pending = await pendingRequest(messages);
    stream.cancel();
    assert.equal((await ended)?.code, GrpcStatus.CANCELLED);
    await expectEventually(async () => {
      const { request } = await reviewer('bob').get({ id: pending.approvalRequestId });
      assert.equal(request!.state, approvalsV1.ApprovalState.APPROVAL_STATE_WITHDRAWN);
      assert.equal(request!.reason, 'the requester stopped waiting for the export');
    });
  });

  it('takes only an identity\'s API key and a window that makes sense, saying what is wrong', async () => {
    const internal = collect(audit({ [INTERNAL_TOKEN_METADATA]: TOKEN }).stream<auditV1.ExportResponse>('export', window));
    const denied = await internal.ended;
    assert.equal(denied?.code, GrpcStatus.PERMISSION_DENIED);
    assert.match(denied!.details, /^Export needs an identity's API key in 'x-tracegate-api-key'/);
    const noSince = await exportAs('dana', {}).ended;
    assert.equal(noSince?.code, GrpcStatus.INVALID_ARGUMENT);
    assert.match(noSince!.details, /^since is required/);
    const backwards = await exportAs('dana', { since: window.until, until: window.since }).ended;
    assert.equal(backwards?.code, GrpcStatus.INVALID_ARGUMENT);
    assert.match(backwards!.details, /^until \(2026-11-21T00:00:00.000Z\) must be after since \(2026-11-22T00:00:00.000Z\)/);
    const wrongKey = await collect(audit({ [API_KEY]: `${keys.dana!.apiKey}x` }).stream<auditV1.ExportResponse>('export', window)).ended;
    assert.equal(wrongKey?.code, GrpcStatus.UNAUTHENTICATED);
  });
});
