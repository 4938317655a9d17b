import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { status as GrpcStatus, type ServiceError } from '@grpc/grpc-js';
import { approvalsV1, SERVICE_PROTOS } from '@tracegate/contracts';
import { PostgresEventLog, TOPICS, verifyChain, type CloudEvent, type EventLog, type Subscription } from '@tracegate/events';
import { grpcClient, INTERNAL_TOKEN_METADATA, startServices, type PromiseClient, type RunningProcess } from '@tracegate/runtime';
import { expectEventually, freePort, startPostgres, type PostgresServer } from '@tracegate/test-harness';
import { approvalsService } from './approvals.definition.js';
import { API_KEY_METADATA } from './repositories/reviewer-directory.js';
import { startBrokerProcess, type BrokerProcess } from './testing/broker-process.testing.js';

const { ApprovalState, Verdict } = approvalsV1;
type Client = PromiseClient<approvalsV1.ApprovalServiceClient>;

const TOKEN = randomBytes(32).toString('base64url');

function grpcError(code: GrpcStatus, pattern?: RegExp) {
  return (error: ServiceError) => {
    assert.equal(error.code, code, `expected status ${GrpcStatus[code]}, got ${GrpcStatus[error.code]}: ${error.details}`);
    if (pattern) assert.match(error.details, pattern);
    return true;
  };
}

/** A Watch stream, collected: each state it sent, and how it ended. */
function watch(client: Client, id: string) {
  const states: approvalsV1.ApprovalRequest[] = [];
  const stream = client.stream<approvalsV1.WatchResponse>('watch', { id });
  const ended = new Promise<{ ok: true } | { ok: false; error: ServiceError }>((resolve) => {
    stream.on('data', (message: approvalsV1.WatchResponse) => states.push(message.request!));
    stream.on('error', (error: ServiceError) => resolve({ ok: false, error }));
    stream.on('end', () => resolve({ ok: true }));
  });
  return { states, ended, stateNames: () => states.map((s) => ApprovalState[s.state]) };
}

describe('approvals over gRPC with a real PostgreSQL and a real broker', () => {
  let postgres: PostgresServer;
  let databaseUrl: string;
  let broker: BrokerProcess;
  let environment: Record<string, string>;
  let proc: RunningProcess | undefined;
  let address: string;
  let gateway: Client;
  const reviewers: Record<string, { apiKey: string; id: string; client: Client }> = {};
  let reader: EventLog;
  let subscription: Subscription;
  const events: CloudEvent[] = [];

  const start = async () => {
    proc = await startServices([approvalsService], { component: 'tracegate approvals test', databaseUrl, env: environment });
  };
  const stop = async () => {
    await proc?.stop();
    proc = undefined;
  };
  const client = (metadata: Record<string, string>): Client =>
    grpcClient<approvalsV1.ApprovalServiceClient>(SERVICE_PROTOS.approvals.files[0], 'tracegate.approvals.v1.ApprovalService', address, { metadata });
  const askTerms = (overrides: Partial<approvalsV1.RequestRequest> = {}): approvalsV1.RequestRequest => ({
    requesterId: reviewers.dave!.id,
    requesterName: 'dave',
    target: 'billing',
    maskedCommand: 'DELETE FROM invoices WHERE id = $1',
    traceId: 'trace-42',
    rule: 'writes-need-review',
    reviewerGroup: 'dba',
    quorum: 1,
    timeoutSeconds: 600,
    sessionId: 'session-9',
    ...overrides,
  });
  const ask = (overrides: Partial<approvalsV1.RequestRequest> = {}) => gateway.request(askTerms(overrides));

  before(async () => {
    postgres = await startPostgres();
    databaseUrl = await postgres.createDatabase();
    broker = await startBrokerProcess(await postgres.createDatabase(), TOKEN, { grpc: await freePort(), metrics: await freePort() });
    const grpcPort = await freePort();
    address = `127.0.0.1:${grpcPort}`;
    environment = {
      TRACEGATE_APPROVALS_GRPC_PORT: String(grpcPort),
      TRACEGATE_APPROVALS_METRICS_PORT: String(await freePort()),
      TRACEGATE_BROKER_ADDRESS: broker.address,
      TRACEGATE_INTERNAL_TOKEN: TOKEN,
      TRACEGATE_LOG_LEVEL: 'silent',
    };
    await start();
    gateway = client({ [INTERNAL_TOKEN_METADATA]: TOKEN });
    // dave is a person in dba who also runs commands: his own requests are for others to approve.
    for (const [name, kind, groups] of [['alice', 'human', ['dba']], ['bob', 'human', ['dba', 'sre']], ['carol', 'human', ['sre']], ['dave', 'human', ['dba']], ['robot', 'agent', ['dba']]] as const) {
      const key = await broker.createKey(name, kind, groups);
      reviewers[name] = { ...key, client: client({ [API_KEY_METADATA]: key.apiKey }) };
    }
    reader = await PostgresEventLog.connect(databaseUrl);
    subscription = await reader.subscribe({ group: 'approvals-int-test', topics: [TOPICS.approvals.name], handler: async ({ event }) => void events.push(event) });
  });

  after(async () => {
    gateway?.close();
    for (const r of Object.values(reviewers)) r.client.close();
    await subscription?.stop();
    await reader?.close();
    await stop();
    await broker?.stop();
    await postgres?.stop();
  });

  it('refuses callers without the internal token or an API key, saying what to present', async () => {
    const anonymous = client({});
    try {
      await assert.rejects(anonymous.request({} as approvalsV1.RequestRequest), grpcError(GrpcStatus.UNAUTHENTICATED, /'x-tracegate-internal-token'.*missing/));
      await assert.rejects(anonymous.decide({ id: 'x', reviewerId: 'alice', verdict: Verdict.VERDICT_APPROVE, reason: '' }), grpcError(GrpcStatus.UNAUTHENTICATED, /the reviewer's own API key in the gRPC metadata 'x-tracegate-api-key'/));
      await assert.rejects(anonymous.list({ state: 0 }), grpcError(GrpcStatus.UNAUTHENTICATED));
      const forged = client({ [API_KEY_METADATA]: `tg_${'0'.repeat(32)}_${'A'.repeat(43)}` });
      await assert.rejects(forged.list({ state: 0 }), grpcError(GrpcStatus.UNAUTHENTICATED, /is not an active tracegate key/));
      forged.close();
      // A reviewer may read, but only services open or withdraw requests.
      await assert.rejects(reviewers.alice!.client.request({} as approvalsV1.RequestRequest), grpcError(GrpcStatus.UNAUTHENTICATED));
    } finally {
      anonymous.close();
    }
  });

  it('opens a request, reads it back with Get and List, and records it on the approvals topic', async () => {
    const { request } = await ask();
    assert.ok(request);
    assert.match(request.id, /^[0-9a-f-]{36}$/);
    assert.equal(request.state, ApprovalState.APPROVAL_STATE_PENDING);
    assert.equal(request.requesterName, 'dave');
    assert.ok(request.expiresAt!.seconds - request.createdAt!.seconds === 600);
    const { request: got } = await reviewers.carol!.client.get({ id: request.id });
    assert.deepEqual(got, request);
    const { requests } = await gateway.list({ state: ApprovalState.APPROVAL_STATE_PENDING });
    assert.ok(requests.some((r) => r.id === request.id));
    const { requests: approved } = await gateway.list({ state: ApprovalState.APPROVAL_STATE_APPROVED });
    assert.ok(!approved.some((r) => r.id === request.id));
    await expectEventually(() => {
      const mine = events.filter((e) => e.subject === request.id);
      assert.deepEqual(mine.map((e) => e.type), ['dev.tracegate.approval.requested.v1']);
      assert.equal((mine[0]!.data as { maskedCommand: string }).maskedCommand, 'DELETE FROM invoices WHERE id = $1');
    });
    await assert.rejects(gateway.get({ id: '00000000-0000-4000-8000-000000000000' }), grpcError(GrpcStatus.NOT_FOUND, /no approval request has id .*`tracegate approvals list`/));
    await assert.rejects(gateway.get({ id: 'not-an-id' }), grpcError(GrpcStatus.NOT_FOUND));
    const unknown = watch(gateway, '00000000-0000-4000-8000-000000000000');
    const ended = await unknown.ended;
    assert.ok(!ended.ok && ended.error.code === GrpcStatus.NOT_FOUND && /no approval request has id/.test(ended.error.details), JSON.stringify(ended));
    const anonymous = client({});
    const refused = await watch(anonymous, request.id).ended;
    anonymous.close();
    assert.ok(!refused.ok && refused.error.code === GrpcStatus.UNAUTHENTICATED, JSON.stringify(refused));
    await assert.rejects(ask({ reviewerGroup: '' }), grpcError(GrpcStatus.INVALID_ARGUMENT, /^reviewer_group is required/));
  });

  it('needs two distinct approvers for a quorum of two; self-approval, outsiders, agents and a second vote are refused; Watch follows it to the end', async () => {
    const { request } = await ask({ quorum: 2 });
    const id = request!.id;
    const watcher = watch(gateway, id);
    await expectEventually(() => assert.deepEqual(watcher.stateNames(), ['APPROVAL_STATE_PENDING']));

    const approve = (name: string) => reviewers[name]!.client.decide({ id, reviewerId: '', verdict: Verdict.VERDICT_APPROVE, reason: '' });
    await assert.rejects(approve('dave'), grpcError(GrpcStatus.PERMISSION_DENIED, /^you requested this change; another member of 'dba' must approve it$/));
    await assert.rejects(approve('carol'), grpcError(GrpcStatus.PERMISSION_DENIED, /'carol' is not in the reviewer group 'dba'/));
    await assert.rejects(approve('robot'), grpcError(GrpcStatus.PERMISSION_DENIED, /'robot' is an agent identity; only people/));
    const first = await approve('alice');
    assert.equal(first.request!.state, ApprovalState.APPROVAL_STATE_PENDING);
    assert.deepEqual(first.request!.approvers, ['alice']);
    await assert.rejects(approve('alice'), grpcError(GrpcStatus.ALREADY_EXISTS, /you already approved request .*needs 1 more approval/));
    // An API key speaks for its own identity only.
    await assert.rejects(
      reviewers.alice!.client.decide({ id, reviewerId: 'bob', verdict: Verdict.VERDICT_APPROVE, reason: '' }),
      grpcError(GrpcStatus.INVALID_ARGUMENT, /'bob' is not the identity of the API key presented \('alice'\)/),
    );
    const second = await approve('bob');
    assert.equal(second.request!.state, ApprovalState.APPROVAL_STATE_APPROVED);
    assert.deepEqual(second.request!.approvers, ['alice', 'bob']);

    assert.deepEqual(await watcher.ended, { ok: true });
    assert.deepEqual(watcher.stateNames(), ['APPROVAL_STATE_PENDING', 'APPROVAL_STATE_PENDING', 'APPROVAL_STATE_APPROVED']);
    assert.deepEqual(watcher.states[1]!.approvers, ['alice']);

    await assert.rejects(
      reviewers.bob!.client.decide({ id, reviewerId: '', verdict: Verdict.VERDICT_DENY, reason: 'too late' }),
      grpcError(GrpcStatus.FAILED_PRECONDITION, /^request .* was already approved at .*; there is nothing left to deny$/),
    );
    await expectEventually(() => {
      const mine = events.filter((e) => e.subject === id);
      assert.deepEqual(mine.map((e) => e.type), ['dev.tracegate.approval.requested.v1', 'dev.tracegate.approval.approved.v1', 'dev.tracegate.approval.approved.v1']);
      assert.deepEqual(verifyChain(mine), []);
    });
  });

  it('serialises verdicts that arrive together: two at once meet a quorum of two, and of two at once on a quorum of one the second finds it final', async () => {
    const { request: two } = await ask({ quorum: 2 });
    const approve = (name: string, id: string) => reviewers[name]!.client.decide({ id, reviewerId: '', verdict: Verdict.VERDICT_APPROVE, reason: '' });
    await Promise.all([approve('alice', two!.id), approve('bob', two!.id)]);
    const { request: both } = await gateway.get({ id: two!.id });
    assert.equal(both!.state, ApprovalState.APPROVAL_STATE_APPROVED);
    assert.deepEqual([...both!.approvers].sort(), ['alice', 'bob']);

    const { request: one } = await ask();
    const outcomes = await Promise.allSettled([approve('alice', one!.id), approve('bob', one!.id)]);
    assert.deepEqual(outcomes.map((o) => o.status).sort(), ['fulfilled', 'rejected']);
    const refused = outcomes.find((o) => o.status === 'rejected') as PromiseRejectedResult;
    assert.equal((refused.reason as ServiceError).code, GrpcStatus.FAILED_PRECONDITION);
    await expectEventually(() => {
      for (const id of [two!.id, one!.id]) assert.deepEqual(verifyChain(events.filter((e) => e.subject === id)), []);
      assert.equal(events.filter((e) => e.subject === one!.id && e.type === 'dev.tracegate.approval.approved.v1').length, 1);
    });
  });

  it('denies with the reviewer’s reason (a reason is required), and a service may decide naming the reviewer', async () => {
    const { request } = await ask();
    const id = request!.id;
    await assert.rejects(
      reviewers.bob!.client.decide({ id, reviewerId: '', verdict: Verdict.VERDICT_DENY, reason: '' }),
      grpcError(GrpcStatus.INVALID_ARGUMENT, /^reason is required to deny request/),
    );
    const denied = await gateway.decide({ id, reviewerId: 'bob', verdict: Verdict.VERDICT_DENY, reason: 'not during month-end close' });
    assert.equal(denied.request!.state, ApprovalState.APPROVAL_STATE_DENIED);
    assert.equal(denied.request!.reason, 'not during month-end close');
    assert.equal(denied.request!.decidedBy, 'bob');
    const watcher = watch(gateway, id);
    assert.deepEqual(await watcher.ended, { ok: true });
    assert.deepEqual(watcher.stateNames(), ['APPROVAL_STATE_DENIED']);
  });

  it('withdraws on the requester’s behalf; nobody else can, and a second withdraw answers the same state', async () => {
    const { request } = await ask();
    const id = request!.id;
    const watcher = watch(gateway, id);
    await assert.rejects(gateway.withdraw({ id, requesterId: reviewers.alice!.id, reason: '' }), grpcError(GrpcStatus.PERMISSION_DENIED, /only the requester \(dave\)/));
    const withdrawn = await gateway.withdraw({ id, requesterId: reviewers.dave!.id, reason: 'the client disconnected while the statement was held' });
    assert.equal(withdrawn.request!.state, ApprovalState.APPROVAL_STATE_WITHDRAWN);
    assert.equal(withdrawn.request!.reason, 'the client disconnected while the statement was held');
    const again = await gateway.withdraw({ id, requesterId: reviewers.dave!.id, reason: '' });
    assert.equal(again.request!.state, ApprovalState.APPROVAL_STATE_WITHDRAWN);
    assert.deepEqual(await watcher.ended, { ok: true });
    assert.deepEqual(watcher.stateNames(), ['APPROVAL_STATE_PENDING', 'APPROVAL_STATE_WITHDRAWN']);
    await assert.rejects(
      reviewers.alice!.client.decide({ id, reviewerId: '', verdict: Verdict.VERDICT_APPROVE, reason: '' }),
      grpcError(GrpcStatus.FAILED_PRECONDITION, /already withdrawn/),
    );
  });

  it('expires a request nobody decided, with the reason the requester reads', async () => {
    const { request } = await ask({ timeoutSeconds: 1, quorum: 2 });
    const watcher = watch(gateway, request!.id);
    assert.deepEqual(await watcher.ended, { ok: true });
    assert.deepEqual(watcher.stateNames(), ['APPROVAL_STATE_PENDING', 'APPROVAL_STATE_EXPIRED']);
    assert.match(watcher.states[1]!.reason, /^no decision in time: 0 of 2 required approvals from 'dba' before the request expired at /);
  });

  it('with two replicas on one database, a Watch on one sees a verdict given on the other, and a deadline is kept when the replica that opened the request is gone', async () => {
    const port = await freePort();
    const second = await startServices([approvalsService], {
      component: 'tracegate approvals second replica',
      databaseUrl,
      env: { ...environment, TRACEGATE_APPROVALS_GRPC_PORT: String(port), TRACEGATE_APPROVALS_METRICS_PORT: String(await freePort()) },
    });
    const viaSecond = (metadata: Record<string, string>) =>
      grpcClient<approvalsV1.ApprovalServiceClient>(SERVICE_PROTOS.approvals.files[0], 'tracegate.approvals.v1.ApprovalService', `127.0.0.1:${port}`, { metadata });
    const aliceThere = viaSecond({ [API_KEY_METADATA]: reviewers.alice!.apiKey });
    const gatewayThere = viaSecond({ [INTERNAL_TOKEN_METADATA]: TOKEN });
    try {
      const { request } = await ask();
      const watcher = watch(gateway, request!.id);
      await expectEventually(() => assert.equal(watcher.states.length, 1));
      await aliceThere.decide({ id: request!.id, reviewerId: '', verdict: Verdict.VERDICT_APPROVE, reason: '' });
      assert.deepEqual(await watcher.ended, { ok: true });
      assert.deepEqual(watcher.stateNames(), ['APPROVAL_STATE_PENDING', 'APPROVAL_STATE_APPROVED']);

      const { request: opened } = await gatewayThere.request(askTerms({ timeoutSeconds: 2 }));
      const expiring = watch(gateway, opened!.id);
      await expectEventually(() => assert.equal(expiring.states.length, 1));
      await second.stop();
      assert.deepEqual(await expiring.ended, { ok: true });
      assert.deepEqual(expiring.stateNames(), ['APPROVAL_STATE_PENDING', 'APPROVAL_STATE_EXPIRED']);
    } finally {
      aliceThere.close();
      gatewayThere.close();
      await second.stop();
    }
  });

  it('keeps pending requests across a restart: open Watch streams end cleanly, a new Watch sees the decision, and a deadline that passed while down expires', async () => {
    const { request: held } = await ask();
    const { request: shortLived } = await ask({ timeoutSeconds: 2 });
    const before = watch(gateway, held!.id);
    await expectEventually(() => assert.equal(before.states.length, 1));

    await stop();
    assert.deepEqual(await before.ended, { ok: true }, 'a Watch ends with OK at shutdown, so the gateway simply watches again');
    await new Promise((resolve) => setTimeout(resolve, 2_500));
    await start();

    const { request: got } = await gateway.get({ id: held!.id });
    assert.equal(got!.state, ApprovalState.APPROVAL_STATE_PENDING);
    const afterRestart = watch(gateway, held!.id);
    await expectEventually(() => assert.deepEqual(afterRestart.stateNames(), ['APPROVAL_STATE_PENDING']));
    await reviewers.alice!.client.decide({ id: held!.id, reviewerId: '', verdict: Verdict.VERDICT_APPROVE, reason: '' });
    assert.deepEqual(await afterRestart.ended, { ok: true });
    assert.deepEqual(afterRestart.stateNames(), ['APPROVAL_STATE_PENDING', 'APPROVAL_STATE_APPROVED']);

    await expectEventually(async () => {
      const { request } = await gateway.get({ id: shortLived!.id });
      assert.equal(request!.state, ApprovalState.APPROVAL_STATE_EXPIRED);
    });
    await expectEventually(() => assert.deepEqual(verifyChain(events.filter((e) => e.subject === held!.id)), []));
  });
});
