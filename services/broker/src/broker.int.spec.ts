import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { credentials, loadPackageDefinition, Metadata, status as GrpcStatus, type ServiceError } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import pg from 'pg';
import { brokerV1, PROTO_LOADER_OPTIONS, PROTO_ROOT, SERVICE_PROTOS } from '@tracegate/contracts';
import { PostgresEventLog, TOPICS, verifyChain, type CloudEvent, type EventLog, type Subscription } from '@tracegate/events';
import { startServices, type RunningProcess } from '@tracegate/runtime';
import { readFile } from 'node:fs/promises';
import { expectEventually, freePort, startPostgres, startSshd, type PostgresServer, type SshdServer } from '@tracegate/test-harness';
import { brokerService } from './broker.definition.js';
import { ed25519KeyPair } from './services/ssh-keys.testing.js';

type Callback = (error: ServiceError | null, response?: unknown) => void;
type RawClient = Record<string, (request: unknown, metadata: Metadata, callback: Callback) => void> & { close(): void };

const TOKEN = randomBytes(32).toString('base64url');
const K1 = `k1:${randomBytes(32).toString('base64')}`;
const K2 = `k2:${randomBytes(32).toString('base64')}`;
const PASSWORD = `pw-${randomBytes(16).toString('hex')}`;

/** A broker client; `token` null sends no internal token. */
class BrokerCaller {
  private readonly clients = new Map<string, RawClient>();
  constructor(private readonly address: string) {}

  call<T>(service: string, method: string, request: unknown, token: string | null = TOKEN): Promise<T> {
    let client = this.clients.get(service);
    if (!client) {
      const definition = loadSync(SERVICE_PROTOS.broker.files[0], { ...PROTO_LOADER_OPTIONS, includeDirs: [PROTO_ROOT] });
      const root = loadPackageDefinition(definition) as unknown as { tracegate: { broker: { v1: Record<string, new (address: string, creds: unknown) => RawClient> } } };
      client = new root.tracegate.broker.v1[service]!(this.address, credentials.createInsecure());
      this.clients.set(service, client);
    }
    const metadata = new Metadata();
    if (token !== null) metadata.set('x-tracegate-internal-token', token);
    return new Promise((resolve, reject) => client[method]!(request, metadata, (error, response) => (error ? reject(error) : resolve(response as T))));
  }

  close() {
    for (const client of this.clients.values()) client.close();
  }
}

function grpcError(code: GrpcStatus, pattern?: RegExp) {
  return (error: ServiceError) => {
    assert.equal(error.code, code, `expected status ${GrpcStatus[code]}, got ${GrpcStatus[error.code]}: ${error.details}`);
    if (pattern) assert.match(error.details, pattern);
    return true;
  };
}

const billing = (name = 'billing'): brokerV1.Target => ({
  name,
  type: brokerV1.TargetType.TARGET_TYPE_POSTGRES,
  host: '10.1.2.3',
  port: 5432,
  database: 'billing',
  user: 'billing_rw',
  tls: brokerV1.TlsMode.TLS_MODE_VERIFY_FULL,
  labels: { env: 'prod' },
  createdAt: undefined,
  hostKey: '',
});

/** The secret part of `tg_<id>_<random>`: base64url, so it may itself contain '_'. */
const randomPartOf = (key: string) => key.slice(key.indexOf('_', 3) + 1);

describe('broker over gRPC with a real PostgreSQL', () => {
  let postgres: PostgresServer;
  let databaseUrl: string;
  let environment: Record<string, string>;
  let proc: RunningProcess | undefined;
  let broker: BrokerCaller;
  let reader: EventLog;
  let subscription: Subscription;
  const events: CloudEvent[] = [];

  const start = async (keys: string) => {
    proc = await startServices([brokerService], { component: 'tracegate broker test', databaseUrl, env: { ...environment, TRACEGATE_BROKER_KEYS: keys } });
  };
  const stop = async () => {
    await proc?.stop();
    proc = undefined;
  };

  before(async () => {
    postgres = await startPostgres();
    databaseUrl = await postgres.createDatabase();
    environment = {
      TRACEGATE_BROKER_GRPC_PORT: String(await freePort()),
      TRACEGATE_BROKER_METRICS_PORT: String(await freePort()),
      TRACEGATE_INTERNAL_TOKEN: TOKEN,
      TRACEGATE_LOG_LEVEL: 'silent',
    };
    await start(K1);
    broker = new BrokerCaller(`127.0.0.1:${environment.TRACEGATE_BROKER_GRPC_PORT}`);
    reader = await PostgresEventLog.connect(databaseUrl);
    subscription = await reader.subscribe({
      group: 'broker-int-test',
      topics: [TOPICS.access.name],
      handler: async ({ event }) => {
        events.push(event);
      },
    });
  });

  after(async () => {
    broker?.close();
    await subscription?.stop();
    await reader?.close();
    await stop();
    await postgres?.stop();
  });

  it('refuses every implemented RPC without the internal token, or with a wrong one, saying which metadata it expects', async () => {
    const calls: [string, string, unknown][] = [
      ['TargetService', 'addTarget', { target: billing('nope'), secret: PASSWORD }],
      ['TargetService', 'listTargets', {}],
      ['TargetService', 'removeTarget', { name: 'nope' }],
      ['TargetService', 'rewrapSecrets', {}],
      ['IdentityService', 'createKey', { name: 'nope', kind: 1, groups: [] }],
      ['IdentityService', 'listKeys', {}],
      ['IdentityService', 'revokeKey', { name: 'nope' }],
      ['IdentityService', 'authenticate', { name: 'nope', secret: 'tg_x' }],
      ['IdentityService', 'addSshKey', { name: 'nope', publicKey: 'ssh-ed25519 AAAA' }],
      ['IdentityService', 'removeSshKey', { name: 'nope', fingerprint: 'SHA256:x' }],
      ['IdentityService', 'authenticatePublicKey', { name: 'nope', publicKey: 'ssh-ed25519 AAAA' }],
      ['CredentialService', 'checkoutCredential', { target: 'nope', sessionId: 's', identityId: 'i' }],
      ['CredentialService', 'releaseCredential', { leaseId: 'x' }],
    ];
    for (const [service, method, request] of calls) {
      await assert.rejects(broker.call(service, method, request, null), grpcError(GrpcStatus.UNAUTHENTICATED, /gRPC metadata 'x-tracegate-internal-token'.*missing/));
      await assert.rejects(broker.call(service, method, request, `${TOKEN}x`), grpcError(GrpcStatus.UNAUTHENTICATED, /'x-tracegate-internal-token'.*wrong/));
    }
  });

  it('adds, lists and removes targets; a duplicate is ALREADY_EXISTS, an unknown one NOT_FOUND, a bad field INVALID_ARGUMENT', async () => {
    const added = await broker.call<brokerV1.AddTargetResponse>('TargetService', 'addTarget', { target: billing(), secret: PASSWORD });
    assert.equal(added.target?.name, 'billing');
    assert.ok(!JSON.stringify(added).includes(PASSWORD));
    await broker.call('TargetService', 'addTarget', { target: billing('scratch'), secret: `${PASSWORD}-scratch` });

    await assert.rejects(
      broker.call('TargetService', 'addTarget', { target: billing(), secret: 'other' }),
      grpcError(GrpcStatus.ALREADY_EXISTS, /target 'billing' is already registered; remove it first with `tracegate target remove billing`/),
    );
    await assert.rejects(
      broker.call('TargetService', 'addTarget', { target: { ...billing('x'), port: 0 }, secret: 'p' }),
      grpcError(GrpcStatus.INVALID_ARGUMENT, /^target\.port 0 is not a port/),
    );
    await assert.rejects(
      broker.call('TargetService', 'addTarget', { target: billing('y'), secret: '' }),
      grpcError(GrpcStatus.INVALID_ARGUMENT, /^secret is required/),
    );
    await assert.rejects(
      broker.call('TargetService', 'addTarget', { target: billing('bad name; drop'), secret: 'p' }),
      grpcError(GrpcStatus.INVALID_ARGUMENT, /^target\.name 'bad name; drop' is not a target name/),
    );

    const listed = await broker.call<brokerV1.ListTargetsResponse>('TargetService', 'listTargets', {});
    assert.deepEqual(listed.targets.map((t) => t.name), ['billing', 'scratch']);
    const [first] = listed.targets;
    assert.deepEqual({ ...first, createdAt: undefined }, { ...billing(), createdAt: undefined });
    assert.ok(first!.createdAt && first!.createdAt.seconds > 0);
    assert.ok(!JSON.stringify(listed).includes(PASSWORD), 'no listing carries a secret');

    await broker.call('TargetService', 'removeTarget', { name: 'scratch' });
    await assert.rejects(
      broker.call('TargetService', 'removeTarget', { name: 'scratch' }),
      grpcError(GrpcStatus.NOT_FOUND, /^target 'scratch' is not registered; run `tracegate target add scratch …`/),
    );
    const after = await broker.call<brokerV1.ListTargetsResponse>('TargetService', 'listTargets', {});
    assert.deepEqual(after.targets.map((t) => t.name), ['billing']);
  });

  it('stores the secret only as AES-GCM ciphertext under the current key id', async () => {
    const client = new pg.Client({ connectionString: databaseUrl });
    await client.connect();
    try {
      const { rows } = await client.query<{ secret_ciphertext: Buffer; secret_key_id: string; secret_nonce: Buffer }>(
        `SELECT secret_ciphertext, secret_key_id, secret_nonce FROM broker.targets WHERE name = 'billing'`,
      );
      assert.equal(rows.length, 1);
      assert.equal(rows[0]!.secret_key_id, 'k1');
      assert.equal(rows[0]!.secret_nonce.length, 12);
      assert.ok(!rows[0]!.secret_ciphertext.toString('latin1').includes(PASSWORD));
      const { rows: whole } = await client.query(`SELECT * FROM broker.targets`);
      assert.ok(!JSON.stringify(whole).includes(PASSWORD));
    } finally {
      await client.end();
    }
  });

  it('checks out the decrypted secret with the connection details, and releases the lease', async () => {
    const lease = await broker.call<brokerV1.CheckoutCredentialResponse>('CredentialService', 'checkoutCredential', {
      target: 'billing',
      sessionId: 'session-1',
      identityId: 'identity-1',
    });
    assert.equal(lease.secret, PASSWORD);
    assert.equal(lease.user, 'billing_rw');
    assert.match(lease.leaseId, /^[0-9a-f-]{36}$/);
    assert.deepEqual(
      { host: lease.target?.host, port: lease.target?.port, database: lease.target?.database, tls: lease.target?.tls, type: lease.target?.type },
      { host: '10.1.2.3', port: 5432, database: 'billing', tls: brokerV1.TlsMode.TLS_MODE_VERIFY_FULL, type: brokerV1.TargetType.TARGET_TYPE_POSTGRES },
    );
    const expiresInSeconds = lease.expiresAt!.seconds - Math.floor(Date.now() / 1000);
    assert.ok(expiresInSeconds > 800 && expiresInSeconds <= 900, `the lease lasts TRACEGATE_CREDENTIAL_LEASE_SECONDS (900), not ${expiresInSeconds}`);

    await broker.call('CredentialService', 'releaseCredential', { leaseId: lease.leaseId });
    await broker.call('CredentialService', 'releaseCredential', { leaseId: lease.leaseId }); // idempotent
    await assert.rejects(
      broker.call('CredentialService', 'releaseCredential', { leaseId: '00000000-0000-7000-8000-000000000000' }),
      grpcError(GrpcStatus.NOT_FOUND, /no credential lease has id/),
    );
    await assert.rejects(
      broker.call('CredentialService', 'checkoutCredential', { target: 'missing', sessionId: 's', identityId: 'i' }),
      grpcError(GrpcStatus.NOT_FOUND, /target 'missing' is not registered/),
    );
    await assert.rejects(
      broker.call('CredentialService', 'checkoutCredential', { target: 'billing', sessionId: '', identityId: 'i' }),
      grpcError(GrpcStatus.INVALID_ARGUMENT, /^session_id is required/),
    );
  });

  let agentKey = '';
  it('creates, lists, authenticates and revokes API keys; every failure to authenticate looks the same', async () => {
    const created = await broker.call<brokerV1.CreateKeyResponse>('IdentityService', 'createKey', {
      name: 'ci-agent',
      kind: brokerV1.IdentityKind.IDENTITY_KIND_AGENT,
      groups: ['readers', 'ci', 'readers'],
    });
    agentKey = created.secret;
    assert.match(agentKey, new RegExp(`^tg_${created.key!.id}_[A-Za-z0-9_-]{43}$`));
    assert.deepEqual({ name: created.key!.name, kind: created.key!.kind, groups: created.key!.groups }, { name: 'ci-agent', kind: brokerV1.IdentityKind.IDENTITY_KIND_AGENT, groups: ['readers', 'ci'] });
    await assert.rejects(
      broker.call('IdentityService', 'createKey', { name: 'ci-agent', kind: brokerV1.IdentityKind.IDENTITY_KIND_HUMAN, groups: [] }),
      grpcError(GrpcStatus.ALREADY_EXISTS, /an API key named 'ci-agent' already exists/),
    );
    await assert.rejects(
      broker.call('IdentityService', 'createKey', { name: 'x', kind: brokerV1.IdentityKind.IDENTITY_KIND_UNSPECIFIED, groups: [] }),
      grpcError(GrpcStatus.INVALID_ARGUMENT, /^kind is required: agent, human or service/),
    );
    const other = await broker.call<brokerV1.CreateKeyResponse>('IdentityService', 'createKey', { name: 'alice', kind: brokerV1.IdentityKind.IDENTITY_KIND_HUMAN, groups: [] });

    const authenticated = await broker.call<brokerV1.AuthenticateResponse>('IdentityService', 'authenticate', { name: 'ci-agent', secret: agentKey });
    assert.deepEqual(
      { id: authenticated.key!.id, name: authenticated.key!.name, kind: authenticated.key!.kind, groups: authenticated.key!.groups },
      { id: created.key!.id, name: 'ci-agent', kind: brokerV1.IdentityKind.IDENTITY_KIND_AGENT, groups: ['readers', 'ci'] },
    );

    const failures: { name: string; secret: string }[] = [
      { name: 'ci-agent', secret: other.secret }, // another identity's key
      { name: 'ci-agent', secret: `${agentKey.slice(0, -2)}AA` }, // wrong key
      { name: 'nobody', secret: agentKey }, // unknown name
      { name: 'ci-agent', secret: '' },
    ];
    const messages = new Set<string>();
    for (const attempt of failures) {
      await assert.rejects(broker.call('IdentityService', 'authenticate', attempt), (error: ServiceError) => {
        assert.equal(error.code, GrpcStatus.UNAUTHENTICATED);
        messages.add(error.details);
        return true;
      });
    }

    const listed = await broker.call<brokerV1.ListKeysResponse>('IdentityService', 'listKeys', {});
    assert.deepEqual(listed.keys.map((k) => k.name), ['ci-agent', 'alice']);
    const listedText = JSON.stringify(listed);
    assert.ok(!listedText.includes(randomPartOf(agentKey)) && !listedText.includes(randomPartOf(other.secret)), 'no listing carries a key');

    await broker.call('IdentityService', 'revokeKey', { name: 'ci-agent' });
    await broker.call('IdentityService', 'revokeKey', { name: 'ci-agent' }); // idempotent
    await assert.rejects(broker.call('IdentityService', 'authenticate', { name: 'ci-agent', secret: agentKey }), (error: ServiceError) => {
      assert.equal(error.code, GrpcStatus.UNAUTHENTICATED);
      messages.add(error.details);
      return true;
    });
    assert.equal(messages.size, 1, `unknown name, wrong key and revoked key answer alike: ${[...messages].join(' | ')}`);
    await assert.rejects(broker.call('IdentityService', 'revokeKey', { name: 'nobody' }), grpcError(GrpcStatus.NOT_FOUND, /no API key is named 'nobody'/));
    const revoked = (await broker.call<brokerV1.ListKeysResponse>('IdentityService', 'listKeys', {})).keys.find((k) => k.name === 'ci-agent');
    assert.ok(revoked?.revokedAt && revoked.revokedAt.seconds > 0);
  });

  it('puts an event on the access topic for each change, chained per aggregate, with no secret in any', async () => {
    const expected = [
      ['dev.tracegate.target.added.v1', 'targets/billing'],
      ['dev.tracegate.target.added.v1', 'targets/scratch'],
      ['dev.tracegate.target.removed.v1', 'targets/scratch'],
      ['dev.tracegate.lease.issued.v1', undefined],
      ['dev.tracegate.lease.released.v1', undefined],
      ['dev.tracegate.identity.key_created.v1', 'identities/ci-agent'],
      ['dev.tracegate.identity.key_created.v1', 'identities/alice'],
      ['dev.tracegate.identity.key_revoked.v1', 'identities/ci-agent'],
    ] as const;
    await expectEventually(() => {
      assert.deepEqual(
        events.map((e) => [e.type, e.subject.startsWith('leases/') ? undefined : e.subject]),
        expected.map(([type, subject]) => [type, subject]),
      );
    });
    const issued = events.find((e) => e.type === 'dev.tracegate.lease.issued.v1')!;
    assert.deepEqual(
      { ...(issued.data as Record<string, unknown>), leaseId: undefined, issuedAt: undefined, expiresAt: undefined },
      { leaseId: undefined, issuedAt: undefined, expiresAt: undefined, target: 'billing', sessionId: 'session-1', identityId: 'identity-1', user: 'billing_rw' },
    );
    const added = events.find((e) => e.subject === 'targets/billing')!;
    assert.deepEqual((added.data as { target: unknown }).target, { name: 'billing', type: 'postgres', host: '10.1.2.3', port: 5432, database: 'billing', user: 'billing_rw', tls: 'verify-full', labels: { env: 'prod' } });

    const bySubject = Map.groupBy(events, (e) => e.subject);
    for (const [subject, chain] of bySubject) assert.deepEqual(verifyChain(chain), [], `the chain of ${subject} holds`);
    assert.deepEqual(bySubject.get('targets/scratch')!.map((e) => e.sequence), [1, 2]);

    const randomPart = randomPartOf(agentKey);
    for (const event of events) {
      const text = JSON.stringify(event);
      assert.ok(!text.includes(PASSWORD), `${event.type} carries no target secret`);
      assert.ok(!text.includes(randomPart), `${event.type} carries no API key`);
    }
  });

  let sshd: SshdServer | undefined;
  after(() => sshd?.stop());

  it('registers an ssh target with a real sshd\'s pinned host key and private key, lists it and checks it out with both; refuses a bad one', async () => {
    // A real OpenSSH server's keys, as an operator would copy them: the host key from known_hosts, the client key file.
    sshd = await startSshd();
    const hostKey = sshd.knownHostsLine.split(' ').slice(1).join(' ');
    const privateKey = await readFile(sshd.clientKeyPath, 'utf8');
    const shell: brokerV1.Target = {
      name: 'db1-shell',
      type: brokerV1.TargetType.TARGET_TYPE_SSH,
      host: sshd.host,
      port: sshd.port,
      database: '',
      user: sshd.user,
      tls: brokerV1.TlsMode.TLS_MODE_UNSPECIFIED,
      labels: { env: 'test' },
      createdAt: undefined,
      hostKey: `${hostKey} root@db1`,
    };
    const added = await broker.call<brokerV1.AddTargetResponse>('TargetService', 'addTarget', { target: shell, secret: privateKey });
    assert.equal(added.target?.hostKey, hostKey, 'the pinned line drops the comment');
    assert.ok(!JSON.stringify(added).includes(privateKey.split('\n')[1]!));

    const listed = (await broker.call<brokerV1.ListTargetsResponse>('TargetService', 'listTargets', {})).targets.find((t) => t.name === 'db1-shell');
    assert.deepEqual({ ...listed, createdAt: undefined }, { ...shell, hostKey, createdAt: undefined });
    assert.ok(!JSON.stringify(listed).includes(privateKey.split('\n')[1]!), 'no listing carries the private key');

    const lease = await broker.call<brokerV1.CheckoutCredentialResponse>('CredentialService', 'checkoutCredential', { target: 'db1-shell', sessionId: 'ssh-session-1', identityId: 'identity-1' });
    assert.equal(lease.secret, privateKey);
    assert.equal(lease.user, sshd.user);
    assert.deepEqual(
      { type: lease.target?.type, host: lease.target?.host, port: lease.target?.port, hostKey: lease.target?.hostKey, tls: lease.target?.tls },
      { type: brokerV1.TargetType.TARGET_TYPE_SSH, host: '127.0.0.1', port: sshd.port, hostKey, tls: brokerV1.TlsMode.TLS_MODE_UNSPECIFIED },
    );
    await broker.call('CredentialService', 'releaseCredential', { leaseId: lease.leaseId });

    const refused: [Partial<brokerV1.Target>, string, RegExp][] = [
      [{ hostKey: '' }, privateKey, /^target\.host_key is required for an ssh target/],
      [{ hostKey: hostKey.replace('ssh-ed25519', 'ecdsa-sha2-nistp256') }, privateKey, /^target\.host_key is not an OpenSSH public key line: the line says ecdsa-sha2-nistp256 but the key itself is ssh-ed25519/],
      [{ hostKey: sshd.knownHostsLine }, privateKey, /^target\.host_key is not an OpenSSH public key line: '\[127\.0\.0\.1\]:\d+' is not a supported key type/],
      [{ database: 'postgres' }, privateKey, /^target\.database must be empty for an ssh target/],
      [{ user: '' }, privateKey, /^target\.user is required/],
      [{}, privateKey.slice(0, 120), /^secret looks like a private key but is not one whole/],
      [{}, `${PASSWORD}\n${PASSWORD}`, /^secret is neither a one-line password nor a private key/],
    ];
    for (const [change, secret, message] of refused) {
      await assert.rejects(broker.call('TargetService', 'addTarget', { target: { ...shell, name: 'refused', ...change }, secret }), (error: ServiceError) => {
        grpcError(GrpcStatus.INVALID_ARGUMENT, message)(error);
        assert.ok(!error.details.includes(PASSWORD) && !error.details.includes(privateKey.split('\n')[1]!.slice(0, 20)), 'no secret in the error');
        return true;
      });
    }
    await assert.rejects(
      broker.call('TargetService', 'addTarget', { target: { ...billing('pg-with-host-key'), hostKey }, secret: PASSWORD }),
      grpcError(GrpcStatus.INVALID_ARGUMENT, /^target\.host_key is for ssh targets only/),
    );
    await expectEventually(() => {
      const event = events.find((e) => e.subject === 'targets/db1-shell');
      assert.deepEqual((event?.data as { target: unknown } | undefined)?.target, { name: 'db1-shell', type: 'ssh', host: '127.0.0.1', port: sshd!.port, user: sshd!.user, hostKey, labels: { env: 'test' } });
    });
    for (const event of events) assert.ok(!JSON.stringify(event).includes(privateKey.split('\n')[1]!), `${event.type} carries no private key`);
  });

  it('registers an identity\'s SSH public keys, lists their fingerprints, answers whose key it is and forgets a removed one', async () => {
    const created = await broker.call<brokerV1.CreateKeyResponse>('IdentityService', 'createKey', { name: 'ssh-agent', kind: brokerV1.IdentityKind.IDENTITY_KIND_AGENT, groups: ['ops'] });
    const laptop = ed25519KeyPair('agent@laptop');
    const line = laptop.publicKeyLine.replace(/ agent@laptop$/, '');
    const added = await broker.call<brokerV1.AddSshKeyResponse>('IdentityService', 'addSshKey', { name: 'ssh-agent', publicKey: laptop.publicKeyLine });
    assert.match(added.sshKey!.fingerprint, /^SHA256:[A-Za-z0-9+/]{43}$/);
    assert.equal(added.sshKey!.publicKey, line);

    await assert.rejects(broker.call('IdentityService', 'addSshKey', { name: 'ssh-agent', publicKey: laptop.publicKeyLine }), grpcError(GrpcStatus.ALREADY_EXISTS, /this SSH key is already registered for 'ssh-agent'/));
    await assert.rejects(broker.call('IdentityService', 'addSshKey', { name: 'ssh-agent', publicKey: `from="10.0.0.1" ${line}` }), grpcError(GrpcStatus.INVALID_ARGUMENT, /^public_key is not an OpenSSH public key line: 'from="10\.0\.0\.1"' is not a supported key type/));
    await assert.rejects(broker.call('IdentityService', 'addSshKey', { name: 'nobody', publicKey: line }), grpcError(GrpcStatus.NOT_FOUND, /no API key is named 'nobody'/));
    await assert.rejects(broker.call('IdentityService', 'addSshKey', { name: 'ci-agent', publicKey: line }), grpcError(GrpcStatus.FAILED_PRECONDITION, /API key 'ci-agent' is revoked/));

    const listed = (await broker.call<brokerV1.ListKeysResponse>('IdentityService', 'listKeys', {})).keys;
    assert.deepEqual(
      listed.map((k) => [k.name, k.sshKeys.map((s) => s.fingerprint)]),
      [['ci-agent', []], ['alice', []], ['ssh-agent', [added.sshKey!.fingerprint]]],
    );

    const who = await broker.call<brokerV1.AuthenticatePublicKeyResponse>('IdentityService', 'authenticatePublicKey', { name: 'ssh-agent', publicKey: line });
    assert.deepEqual({ id: who.key!.id, name: who.key!.name, groups: who.key!.groups }, { id: created.key!.id, name: 'ssh-agent', groups: ['ops'] });
    const messages = new Set<string>();
    const refusedAs = async (name: string, publicKey: string) =>
      assert.rejects(broker.call('IdentityService', 'authenticatePublicKey', { name, publicKey }), (error: ServiceError) => {
        assert.equal(error.code, GrpcStatus.UNAUTHENTICATED);
        messages.add(error.details);
        return true;
      });
    await refusedAs('alice', line);
    await refusedAs('nobody', line);
    await refusedAs('ssh-agent', ed25519KeyPair().publicKeyLine);
    await refusedAs('ssh-agent', 'not a key');

    await broker.call('IdentityService', 'removeSshKey', { name: 'ssh-agent', fingerprint: added.sshKey!.fingerprint });
    await refusedAs('ssh-agent', line);
    assert.equal(messages.size, 1, [...messages].join(' | '));
    await assert.rejects(
      broker.call('IdentityService', 'removeSshKey', { name: 'ssh-agent', fingerprint: added.sshKey!.fingerprint }),
      grpcError(GrpcStatus.NOT_FOUND, /'ssh-agent' has no SSH key with fingerprint SHA256:/),
    );

    // Registered again, then the API key revoked: the SSH key no longer logs in either.
    await broker.call('IdentityService', 'addSshKey', { name: 'ssh-agent', publicKey: line });
    await broker.call('IdentityService', 'authenticatePublicKey', { name: 'ssh-agent', publicKey: line });
    await broker.call('IdentityService', 'revokeKey', { name: 'ssh-agent' });
    await refusedAs('ssh-agent', line);
    assert.equal(messages.size, 1);

    await expectEventually(() => {
      const chain = events.filter((e) => e.subject === 'identities/ssh-agent');
      assert.deepEqual(chain.map((e) => e.type), [
        'dev.tracegate.identity.key_created.v1',
        'dev.tracegate.identity.ssh_key_added.v1',
        'dev.tracegate.identity.ssh_key_removed.v1',
        'dev.tracegate.identity.ssh_key_added.v1',
        'dev.tracegate.identity.key_revoked.v1',
      ]);
      assert.deepEqual(chain[1]!.data, { id: created.key!.id, name: 'ssh-agent', fingerprint: added.sshKey!.fingerprint, publicKey: line });
      assert.deepEqual(verifyChain(chain), []);
    });
  });

  it('keeps targets across a restart, and rotates the key-encryption key without losing a secret', async () => {
    await stop();
    // The new key goes first; the old one stays so existing secrets still open.
    await start(`${K2},${K1}`);
    const listed = await broker.call<brokerV1.ListTargetsResponse>('TargetService', 'listTargets', {});
    assert.deepEqual(listed.targets.map((t) => t.name), ['billing', 'db1-shell']);
    assert.match(listed.targets[1]!.hostKey, /^ssh-ed25519 AAAA/);
    const checkout = () => broker.call<brokerV1.CheckoutCredentialResponse>('CredentialService', 'checkoutCredential', { target: 'billing', sessionId: 's2', identityId: 'i2' });
    assert.equal((await checkout()).secret, PASSWORD, 'a secret written under k1 opens with k1 second in the keyring');

    await broker.call('TargetService', 'addTarget', { target: billing('reports'), secret: `${PASSWORD}-reports` });
    const rewrap = await broker.call<brokerV1.RewrapSecretsResponse>('TargetService', 'rewrapSecrets', {});
    assert.deepEqual(rewrap, { rewrapped: 2, keyId: 'k2' }, 'only the secrets under k1 (billing, db1-shell) needed re-encrypting');
    assert.deepEqual(await broker.call('TargetService', 'rewrapSecrets', {}), { rewrapped: 0, keyId: 'k2' });

    await stop();
    await start(K2);
    assert.equal((await checkout()).secret, PASSWORD, 'after rotation the old key can be dropped');

    await stop();
    await start(K1);
    await assert.rejects(checkout(), (error: ServiceError) => {
      assert.equal(error.code, GrpcStatus.INTERNAL);
      assert.match(error.details, /encrypted under key id 'k2', which is not in TRACEGATE_BROKER_KEYS/);
      assert.ok(!error.details.includes(PASSWORD));
      return true;
    });
    await expectEventually(() => assert.ok(events.some((e) => e.type === 'dev.tracegate.target.secret_rewrapped.v1' && e.subject === 'targets/billing')));
  });
});
