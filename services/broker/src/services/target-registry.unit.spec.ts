import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { brokerV1 } from '@tracegate/contracts';
import { BrokerError, BrokerErrorCode } from '../errors.js';
import { CredentialBroker } from './credential-broker.js';
import { cipherWith, fixedClock, InMemoryLeases, InMemoryTargets, K1, K2, NOW } from './in-memory-repositories.testing.js';
import { ed25519KeyPair, openSshKeyBlock } from './ssh-keys.testing.js';
import { TargetRegistry } from './target-registry.js';

const SECRET = 's3cret-password-value';
const target = (overrides: Partial<brokerV1.Target> = {}): brokerV1.Target => ({
  name: 'billing',
  type: brokerV1.TargetType.TARGET_TYPE_POSTGRES,
  host: 'db.internal',
  port: 5432,
  database: 'billing',
  user: 'billing_rw',
  tls: brokerV1.TlsMode.TLS_MODE_VERIFY_FULL,
  labels: { env: 'prod' },
  createdAt: undefined,
  hostKey: '',
  ...overrides,
});

const host = ed25519KeyPair('root@db1');
const sshTarget = (overrides: Partial<brokerV1.Target> = {}): brokerV1.Target => ({
  name: 'db1-shell',
  type: brokerV1.TargetType.TARGET_TYPE_SSH,
  host: 'db1.internal',
  port: 22,
  database: '',
  user: 'deploy',
  tls: brokerV1.TlsMode.TLS_MODE_UNSPECIFIED,
  labels: {},
  createdAt: undefined,
  hostKey: host.publicKeyLine,
  ...overrides,
});

function invalid(field: string) {
  return (error: unknown) => {
    assert.ok(error instanceof BrokerError);
    assert.equal(error.code, BrokerErrorCode.InvalidArgument);
    assert.ok(error.message.startsWith(`${field} `), `'${error.message}' names ${field}`);
    return true;
  };
}

describe('TargetRegistry', () => {
  it('given a valid target, seals its secret, records target.added without the secret, and answers the target', async () => {
    const targets = new InMemoryTargets();
    const registry = new TargetRegistry(targets.asRepository(), cipherWith(K1), fixedClock);

    const added = await registry.add({ target: target(), secret: SECRET });

    assert.deepEqual(added, { ...target(), createdAt: { seconds: NOW.getTime() / 1000, nanos: 0 } });
    const row = targets.rows.get('billing')!;
    assert.equal(row.secretKeyId, 'k1');
    assert.equal(row.tlsMode, 'verify-full');
    assert.ok(!row.secretCiphertext.toString('latin1').includes(SECRET));
    assert.deepEqual(targets.events, [
      {
        type: 'dev.tracegate.target.added.v1',
        subject: 'targets/billing',
        key: 'billing',
        time: NOW,
        data: {
          keyId: 'k1',
          target: { name: 'billing', type: 'postgres', host: 'db.internal', port: 5432, database: 'billing', user: 'billing_rw', tls: 'verify-full', labels: { env: 'prod' } },
        },
      },
    ]);
    assert.ok(!JSON.stringify(targets.events).includes(SECRET));
  });

  it('stores an unspecified TLS mode as require', async () => {
    const targets = new InMemoryTargets();
    const added = await new TargetRegistry(targets.asRepository(), cipherWith(K1), fixedClock).add({ target: target({ tls: brokerV1.TlsMode.TLS_MODE_UNSPECIFIED }), secret: SECRET });
    assert.equal(added.tls, brokerV1.TlsMode.TLS_MODE_REQUIRE);
  });

  it('names the field that is wrong, and records nothing', async () => {
    const targets = new InMemoryTargets();
    const registry = new TargetRegistry(targets.asRepository(), cipherWith(K1), fixedClock);
    const cases: [brokerV1.AddTargetRequest, string][] = [
      [{ target: undefined, secret: SECRET }, 'target'],
      [{ target: target({ name: '' }), secret: SECRET }, 'target.name'],
      [{ target: target({ name: '../etc' }), secret: SECRET }, 'target.name'],
      [{ target: target({ type: brokerV1.TargetType.TARGET_TYPE_UNSPECIFIED }), secret: SECRET }, 'target.type'],
      [{ target: target({ host: '' }), secret: SECRET }, 'target.host'],
      [{ target: target({ port: 70000 }), secret: SECRET }, 'target.port'],
      [{ target: target({ database: '' }), secret: SECRET }, 'target.database'],
      [{ target: target({ user: '' }), secret: SECRET }, 'target.user'],
      [{ target: target({ labels: { 'bad key': 'x' } }), secret: SECRET }, 'target.labels'],
      [{ target: target({ tls: brokerV1.TlsMode.UNRECOGNIZED }), secret: SECRET }, 'target.tls'],
      [{ target: target(), secret: '' }, 'secret'],
      [{ target: target(), secret: 'x'.repeat(4097) }, 'secret'],
    ];
    for (const [request, field] of cases) await assert.rejects(registry.add(request), invalid(field));
    assert.equal(targets.rows.size, 0);
    assert.deepEqual(targets.events, []);
  });

  it('registers an ssh target with its host key pinned without the comment, no TLS mode, and the key or password sealed', async () => {
    const targets = new InMemoryTargets();
    const registry = new TargetRegistry(targets.asRepository(), cipherWith(K1), fixedClock);
    const pinned = host.publicKeyLine.replace(/ root@db1$/, '');

    const added = await registry.add({ target: sshTarget(), secret: openSshKeyBlock('none') });
    assert.deepEqual(added, { ...sshTarget(), hostKey: pinned, createdAt: { seconds: NOW.getTime() / 1000, nanos: 0 } });
    assert.equal(targets.rows.get('db1-shell')!.tlsMode, null);
    assert.deepEqual(targets.events[0]!.data, {
      keyId: 'k1',
      target: { name: 'db1-shell', type: 'ssh', host: 'db1.internal', port: 22, user: 'deploy', hostKey: pinned, labels: {} },
    });

    await registry.add({ target: sshTarget({ name: 'by-pem' }), secret: ed25519KeyPair().privateKeyPem });
    await registry.add({ target: sshTarget({ name: 'by-password' }), secret: SECRET });
    assert.deepEqual((await registry.list()).map((t) => t.name), ['by-password', 'by-pem', 'db1-shell']);
  });

  it('refuses an ssh target without a usable host key or secret, naming the field and never quoting the secret', async () => {
    const targets = new InMemoryTargets();
    const registry = new TargetRegistry(targets.asRepository(), cipherWith(K1), fixedClock);
    const [, hostBlob] = host.publicKeyLine.split(' ');
    const pem = ed25519KeyPair().privateKeyPem;
    const cases: [brokerV1.AddTargetRequest, string, RegExp][] = [
      [{ target: sshTarget({ hostKey: '' }), secret: SECRET }, 'target.host_key', /is required for an ssh target.*ssh-keyscan/],
      [{ target: sshTarget({ hostKey: `ssh-rsa ${hostBlob}` }), secret: SECRET }, 'target.host_key', /is not an OpenSSH public key line: the line says ssh-rsa but the key itself is ssh-ed25519/],
      [{ target: sshTarget({ hostKey: `[db1]:22 ${host.publicKeyLine}` }), secret: SECRET }, 'target.host_key', /is not a supported key type/],
      [{ target: sshTarget({ database: 'postgres' }), secret: SECRET }, 'target.database', /must be empty for an ssh target/],
      [{ target: sshTarget({ tls: brokerV1.TlsMode.TLS_MODE_VERIFY_FULL }), secret: SECRET }, 'target.tls', /must be unset for an ssh target/],
      [{ target: sshTarget({ host: '' }), secret: SECRET }, 'target.host', /is required/],
      [{ target: sshTarget({ user: '' }), secret: SECRET }, 'target.user', /is required/],
      [{ target: sshTarget(), secret: '' }, 'secret', /is required: the password or private key/],
      [{ target: sshTarget(), secret: `${SECRET}\nsecond line` }, 'secret', /is neither a one-line password nor a private key/],
      [{ target: sshTarget(), secret: pem.slice(0, -30) }, 'secret', /looks like a private key but is not one whole/],
      [{ target: sshTarget(), secret: openSshKeyBlock('aes256-ctr') }, 'secret', /passphrase-protected private key/],
      [{ target: sshTarget(), secret: pem.replace(/PRIVATE KEY/g, 'ENCRYPTED PRIVATE KEY') }, 'secret', /passphrase-protected private key/],
      [{ target: sshTarget(), secret: pem.replace(/PRIVATE KEY/g, 'CERTIFICATE') }, 'secret', /looks like a private key but|'CERTIFICATE' block/],
      [{ target: target({ hostKey: host.publicKeyLine }), secret: SECRET }, 'target.host_key', /is for ssh targets only/],
    ];
    for (const [request, field, problem] of cases) {
      await assert.rejects(registry.add(request), (error: unknown) => {
        invalid(field)(error);
        assert.match((error as Error).message, problem);
        const body = pem.split('\n')[1]!;
        assert.ok(!(error as Error).message.includes(SECRET) && !(error as Error).message.includes(body.slice(0, 20)), 'the secret is not in the message');
        return true;
      });
    }
    assert.equal(targets.rows.size, 0);
  });

  it('records target.removed, and an unknown target is TARGET_NOT_FOUND with the command to add it', async () => {
    const targets = new InMemoryTargets();
    const registry = new TargetRegistry(targets.asRepository(), cipherWith(K1), fixedClock);
    await registry.add({ target: target(), secret: SECRET });
    await registry.remove('billing');
    assert.deepEqual(targets.events.at(-1), { type: 'dev.tracegate.target.removed.v1', subject: 'targets/billing', key: 'billing', data: { name: 'billing' }, time: NOW });
    await assert.rejects(registry.remove('billing'), (error: unknown) => error instanceof BrokerError && error.code === BrokerErrorCode.TargetNotFound && /tracegate target add billing/.test(error.message));
  });

  it('rewraps only the secrets under an older key, after which the old key can be dropped', async () => {
    const targets = new InMemoryTargets();
    await new TargetRegistry(targets.asRepository(), cipherWith(K1), fixedClock).add({ target: target(), secret: SECRET });
    const rotated = new TargetRegistry(targets.asRepository(), cipherWith(K2, K1), fixedClock);
    await rotated.add({ target: target({ name: 'reports' }), secret: 'other' });

    assert.deepEqual(await rotated.rewrapSecrets(), { rewrapped: 1, keyId: 'k2' });
    assert.deepEqual(targets.events.at(-1), {
      type: 'dev.tracegate.target.secret_rewrapped.v1',
      subject: 'targets/billing',
      key: 'billing',
      data: { name: 'billing', fromKeyId: 'k1', keyId: 'k2' },
      time: NOW,
    });
    assert.deepEqual(await rotated.rewrapSecrets(), { rewrapped: 0, keyId: 'k2' });

    const leases = new InMemoryLeases();
    const onlyNewKey = new CredentialBroker(targets.asRepository(), leases.asRepository(), cipherWith(K2), fixedClock, { keyring: [K2], internalToken: 'x'.repeat(32), credentialLeaseSeconds: 60 });
    const lease = await onlyNewKey.checkout({ target: 'billing', sessionId: 's', identityId: 'i' });
    assert.equal(lease.secret, SECRET);
  });
});
