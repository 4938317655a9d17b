import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { status as GrpcStatus, type ServiceError } from '@grpc/grpc-js';
import { auditService } from '@tracegate/audit';
import { brokerService } from '@tracegate/broker';
import { auditV1, brokerV1, SERVICE_PROTOS } from '@tracegate/contracts';
import { TOPICS, type CloudEvent, type Subscription } from '@tracegate/events';
import { grpcClient, INTERNAL_TOKEN_METADATA, startServices, type RunningProcess } from '@tracegate/runtime';
import { expectEventually, freePort, startPostgres, type PostgresServer } from '@tracegate/test-harness';
import { runCli } from '../testing/run-cli.js';

const TOKEN = randomBytes(32).toString('base64url');
const DB_PASSWORD = 'pg-Pa55word-for-ledger';

const tracegate = runCli;

describe('tracegate traces and grants against a running broker and audit service', () => {
  let postgres: PostgresServer;
  let proc: RunningProcess;
  let home: string;
  let admin: Record<string, string>;
  let agent: Record<string, string>;
  let auditor: Record<string, string>;
  let agentKeyId: string;
  let auditAddress: string;
  let subscription: Subscription;
  const events: CloudEvent[] = [];

  const createKey = async (name: string, kind: brokerV1.IdentityKind) => {
    const identity = grpcClient<brokerV1.IdentityServiceClient>(SERVICE_PROTOS.broker.files[0], 'tracegate.broker.v1.IdentityService', `127.0.0.1:${admin.TRACEGATE_BROKER_GRPC_PORT}`, {
      metadata: { [INTERNAL_TOKEN_METADATA]: TOKEN },
    });
    try {
      const { key, secret } = await identity.createKey({ name, kind, groups: [] });
      return { id: key!.id, secret };
    } finally {
      identity.close();
    }
  };
  const traceFile = async (trace: unknown) => {
    const file = path.join(home, `${randomUUID()}.json`);
    await writeFile(file, JSON.stringify(trace));
    return file;
  };
  const submitted = async (trace: unknown = { agent: { name: 'billing-bot', model: 'gpt-5' }, prompt: 'count invoices', confidence: 0.9 }) => {
    const run = await tracegate(['traces', 'submit', '--file', await traceFile(trace)], agent);
    assert.equal(run.code, 0, run.stderr);
    return run.stdout.trim();
  };

  before(async () => {
    postgres = await startPostgres();
    const brokerPort = String(await freePort());
    const auditPort = String(await freePort());
    auditAddress = `127.0.0.1:${auditPort}`;
    proc = await startServices([brokerService, auditService], {
      component: 'tracegate cli traces test',
      databaseUrl: await postgres.createDatabase(),
      env: {
        TRACEGATE_BROKER_GRPC_PORT: brokerPort,
        TRACEGATE_BROKER_METRICS_PORT: String(await freePort()),
        TRACEGATE_BROKER_KEYS: `k1:${randomBytes(32).toString('base64')}`,
        TRACEGATE_AUDIT_GRPC_PORT: auditPort,
        TRACEGATE_AUDIT_METRICS_PORT: String(await freePort()),
        TRACEGATE_INTERNAL_TOKEN: TOKEN,
        TRACEGATE_MASKING_HASH_KEY: randomBytes(32).toString('base64'),
        TRACEGATE_LOG_LEVEL: 'silent',
      },
    });
    home = await mkdtemp(path.join(tmpdir(), 'tracegate-traces-'));
    admin = { TRACEGATE_AUDIT_GRPC_PORT: auditPort, TRACEGATE_BROKER_GRPC_PORT: brokerPort, TRACEGATE_INTERNAL_TOKEN: TOKEN, TRACEGATE_HOME: home };
    const bot = await createKey('billing-bot', brokerV1.IdentityKind.IDENTITY_KIND_AGENT);
    const reader = await createKey('auditor', brokerV1.IdentityKind.IDENTITY_KIND_HUMAN);
    agentKeyId = bot.id;
    // An identity's commands carry no internal token: only its own key.
    agent = { TRACEGATE_AUDIT_GRPC_PORT: auditPort, TRACEGATE_IDENTITY: 'billing-bot', TRACEGATE_API_KEY: bot.secret, TRACEGATE_HOME: home };
    auditor = { TRACEGATE_AUDIT_GRPC_PORT: auditPort, TRACEGATE_IDENTITY: 'auditor', TRACEGATE_API_KEY: reader.secret, TRACEGATE_HOME: home };
    subscription = await proc.eventLog.subscribe({
      group: `cli-traces-test-${randomUUID()}`,
      topics: [TOPICS.audit.name],
      handler: async ({ event }) => {
        events.push(event);
      },
    });
  });

  after(async () => {
    await subscription?.stop();
    await proc?.stop();
    await postgres?.stop();
    if (home) await rm(home, { recursive: true, force: true });
  });

  it('submits a trace with the agent API key, prints its id, and the trace belongs to that identity', async () => {
    const id = await submitted();
    assert.match(id, /^t-[0-9a-f-]{36}$/);
    const traces = grpcClient<auditV1.TraceServiceClient>(SERVICE_PROTOS.audit.files[0], 'tracegate.audit.v1.TraceService', auditAddress, { metadata: { [INTERNAL_TOKEN_METADATA]: TOKEN } });
    try {
      const resolved = await traces.resolveTrace({ traceId: id, identityId: agentKeyId, sessionId: '', target: '' });
      assert.deepEqual(resolved.features, { present: true, confidence: 0.9, model: 'gpt-5', tags: [] });
      await assert.rejects(traces.resolveTrace({ traceId: id, identityId: 'key-someone-else', sessionId: '', target: '' }), (error: ServiceError) => error.code === GrpcStatus.PERMISSION_DENIED);
    } finally {
      traces.close();
    }

    // Without TRACEGATE_IDENTITY the key alone says who submits (the service finds its name by the key's id).
    const json = await tracegate(['traces', 'submit', '--json', '--file', await traceFile({ confidence: 0.4, tags: ['nightly'] })], { ...agent, TRACEGATE_IDENTITY: '' });
    assert.equal(json.code, 0, json.stderr);
    const { id: keyOnlyId, features } = JSON.parse(json.stdout) as { id: string; features: unknown };
    assert.deepEqual(features, { present: true, confidence: 0.4, tags: ['nightly'] });
    const again = grpcClient<auditV1.TraceServiceClient>(SERVICE_PROTOS.audit.files[0], 'tracegate.audit.v1.TraceService', auditAddress, { metadata: { [INTERNAL_TOKEN_METADATA]: TOKEN } });
    try {
      assert.equal((await again.resolveTrace({ traceId: keyOnlyId, identityId: agentKeyId, sessionId: '', target: '' })).agentName, 'billing-bot');
    } finally {
      again.close();
    }
  });

  it('refuses a bad or missing key, a malformed or missing file, each with a sentence', async () => {
    const wrongKey = await tracegate(['traces', 'submit', '--file', await traceFile({ prompt: 'x' })], { ...agent, TRACEGATE_API_KEY: 'tg_nope_nope' });
    assert.equal(wrongKey.code, 1);
    assert.match(wrongKey.stderr, /^tracegate: the API key is not valid for identity 'billing-bot'/);
    const noKey = await tracegate(['traces', 'submit', '--file', await traceFile({ prompt: 'x' })], { ...agent, TRACEGATE_API_KEY: '' });
    assert.equal(noKey.code, 1);
    assert.match(noKey.stderr, /set TRACEGATE_API_KEY to its API key/);
    const forged = await tracegate(['traces', 'submit', '--file', await traceFile({ prompt: 'x' })], { ...agent, TRACEGATE_IDENTITY: '', TRACEGATE_API_KEY: `${agent.TRACEGATE_API_KEY!.slice(0, -4)}AAAA` });
    assert.equal(forged.code, 1);
    assert.match(forged.stderr, /^tracegate: the API key is not valid \(unknown, revoked, or a different key\); check TRACEGATE_API_KEY$/m);
    const malformed = await tracegate(['traces', 'submit', '--file', await traceFile({ prompt: 'x', confidence: 'high' })], agent);
    assert.equal(malformed.code, 1);
    assert.match(malformed.stderr, /trace field confidence must be a number from 0 to 1/);
    const missing = await tracegate(['traces', 'submit', '--file', path.join(home, 'nope.json')], agent);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /cannot read the trace file .*nope\.json: it does not exist/);
    const usage = await tracegate(['traces', 'submit'], agent);
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /--file is required/);
  });

  it('lets nobody read a trace without a grant, not even the agent that wrote it, and records each refusal', async () => {
    const id = await submitted();
    const own = await tracegate(['traces', 'show', id], agent);
    assert.equal(own.code, 1);
    assert.match(own.stderr, new RegExp(`identity 'billing-bot' holds no reader grant for agent 'billing-bot', so it may not read trace ${id}; an administrator can grant it: \`tracegate grants create --reader billing-bot --agent billing-bot --expires-in 1h\``));
    const reader = await tracegate(['traces', 'show', id], auditor);
    assert.equal(reader.code, 1);
    assert.match(reader.stderr, /identity 'auditor' holds no reader grant/);
    await expectEventually(
      () => {
        const refused = events.filter((e) => e.type === 'dev.tracegate.auditaccess.refused.v1' && (e.data as { id: string }).id === id);
        assert.deepEqual(refused.map((e) => (e.data as { reader: string }).reader).sort(), ['auditor', 'billing-bot']);
      },
      { description: 'both refusals recorded' },
    );
  });

  it('shows a trace, masked, to a reader with a grant, and records the read naming reader, trace and grant', async () => {
    const id = await submitted({
      agent: { name: 'billing-bot', model: 'gpt-5', version: '2.0' },
      prompt: 'reconcile the ledger',
      steps: [{ thought: 'open the ledger', tool: 'psql', input: `postgresql://ledger:${DB_PASSWORD}@ledger.internal/ledger`, outputSummary: '12 rows' }],
      confidence: 0.66,
      tags: ['finance'],
    });
    const created = await tracegate(['grants', 'create', '--reader', 'auditor', '--agent', 'billing-bot', '--expires-in', '1h', '--reason', 'INC-7'], admin);
    assert.equal(created.code, 0, created.stderr);
    const [grantId, summary] = created.stdout.trimEnd().split('\n');
    assert.match(grantId!, /^rg-[0-9a-f-]{36}$/);
    assert.match(summary!, /^auditor may read agent billing-bot until \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);

    const shown = await tracegate(['traces', 'show', id], auditor);
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(shown.stdout, new RegExp(`^trace\\s+${id}$`, 'm'));
    assert.match(shown.stdout, /^submitted by\s+billing-bot$/m);
    assert.match(shown.stdout, /^agent\s+billing-bot gpt-5 2\.0$/m);
    assert.match(shown.stdout, new RegExp(`^read under\\s+grant ${grantId} \\(expires `, 'm'));
    assert.match(shown.stdout, /^step 1 \(psql\):\n {2}thought: open the ledger\n {2}input: {3}postgresql:\/\/ledger:\S+@ledger\.internal\/ledger\n {2}output: {2}12 rows$/m);
    assert.ok(!shown.stdout.includes(DB_PASSWORD), 'the password never comes back');

    const json = await tracegate(['traces', 'show', id, '--json'], auditor);
    assert.equal(json.code, 0, json.stderr);
    const parsed = JSON.parse(json.stdout) as { trace: { id: string; identityName: string; confidence: number }; grant: { id: string } };
    assert.deepEqual([parsed.trace.id, parsed.trace.identityName, parsed.trace.confidence, parsed.grant.id], [id, 'billing-bot', 0.66, grantId]);

    await expectEventually(
      () => {
        const reads = events.filter((e) => e.type === 'dev.tracegate.auditaccess.read.v1' && (e.data as { id: string }).id === id);
        assert.equal(reads.length, 2);
        assert.equal(reads[0]!.subject, 'readers/auditor');
        assert.deepEqual({ ...(reads[0]!.data as object), readerId: undefined }, { reader: 'auditor', readerId: undefined, kind: 'trace', id, grantId, agent: 'billing-bot', targets: [] });
      },
      { description: 'the reads recorded on tracegate.audit.v1' },
    );
  });

  it('refuses an expired grant, a revoked one and a trace outside the window, saying which', async () => {
    const id = await submitted();
    const other = await createKey('night-auditor', brokerV1.IdentityKind.IDENTITY_KIND_HUMAN);
    const night = { ...auditor, TRACEGATE_IDENTITY: 'night-auditor', TRACEGATE_API_KEY: other.secret };

    const short = await tracegate(['grants', 'create', '--reader', 'night-auditor', '--agent', 'billing-bot', '--expires-in', '1s'], admin);
    assert.equal(short.code, 0, short.stderr);
    const shortId = short.stdout.split('\n')[0]!;
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const expired = await tracegate(['traces', 'show', id], night);
    assert.equal(expired.code, 1);
    assert.match(expired.stderr, new RegExp(`reader grant ${shortId} \\(identity 'night-auditor', agent 'billing-bot'\\) expired at \\S+, so it may not read trace ${id}`));

    const past = await tracegate(['grants', 'create', '--reader', 'night-auditor', '--agent', 'billing-bot', '--until', '2026-01-01T00:00:00Z', '--expires-in', '1h'], admin);
    assert.equal(past.code, 0, past.stderr);
    const outside = await tracegate(['traces', 'show', id], night);
    assert.equal(outside.code, 1);
    assert.match(outside.stderr, /covers agent 'billing-bot' until 2026-01-01T00:00:00\.000Z, but trace t-\S+ was made at \S+, outside that window/);

    const live = await tracegate(['grants', 'create', '--reader', 'night-auditor', '--agent', 'billing-bot', '--from', '2026-01-01', '--expires-in', '1h'], admin);
    const liveId = live.stdout.split('\n')[0]!;
    assert.equal((await tracegate(['traces', 'show', id], night)).code, 0);

    const list = await tracegate(['grants', 'list', '--reader', 'night-auditor'], admin);
    assert.equal(list.code, 0, list.stderr);
    const rows = list.stdout.trimEnd().split('\n');
    assert.match(rows[0]!, /^ID\s+READER\s+SCOPE\s+WINDOW\s+EXPIRES\s+STATE\s+REASON$/);
    assert.equal(rows.length, 3, 'the two live grants; the expired one only with --all');
    const all = await tracegate(['grants', 'list', '--reader', 'night-auditor', '--all'], admin);
    assert.match(all.stdout, new RegExp(`^${shortId}\\s+night-auditor\\s+agent billing-bot\\s+any time\\s+\\S+\\s+expired`, 'm'));

    const revoked = await tracegate(['grants', 'revoke', liveId], admin);
    assert.equal(revoked.code, 0, revoked.stderr);
    assert.match(revoked.stdout, new RegExp(`^revoked ${liveId} at `));
    const afterRevoke = await tracegate(['traces', 'show', id], night);
    assert.equal(afterRevoke.code, 1);
    assert.match(afterRevoke.stderr, /outside that window/, 'the only live grant left is the windowed one');
    const unknown = await tracegate(['grants', 'revoke', `rg-${randomUUID()}`], admin);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /no reader grant has id/);
  });

  it('checks grant options before calling the service', async () => {
    const noExpiry = await tracegate(['grants', 'create', '--reader', 'auditor', '--agent', 'billing-bot'], admin);
    assert.equal(noExpiry.code, 2);
    assert.match(noExpiry.stderr, /--expires-in is required: a reader grant is always time-bound/);
    const both = await tracegate(['grants', 'create', '--reader', 'auditor', '--agent', 'a', '--target', 't', '--expires-in', '1h'], admin);
    assert.equal(both.code, 2);
    assert.match(both.stderr, /exactly one of --agent .* or --target/);
    const badTime = await tracegate(['grants', 'create', '--reader', 'auditor', '--agent', 'a', '--from', '2026-11-22 09:00', '--expires-in', '1h'], admin);
    assert.equal(badTime.code, 2);
    assert.match(badTime.stderr, /--from '2026-11-22 09:00' is not an ISO 8601 time with a zone/);
    const badDuration = await tracegate(['grants', 'create', '--reader', 'auditor', '--agent', 'a', '--expires-in', 'soon'], admin);
    assert.equal(badDuration.code, 2);
    const tooLong = await tracegate(['grants', 'create', '--reader', 'auditor', '--agent', 'a', '--expires-in', '31d'], admin);
    assert.equal(tooLong.code, 1);
    assert.match(tooLong.stderr, /expires_in_seconds must be from 1 second to 30 days/);
  });
});
