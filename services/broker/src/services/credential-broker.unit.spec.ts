import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { brokerV1 } from '@tracegate/contracts';
import type { BrokerConfig } from '../broker.config.js';
import { BrokerError, BrokerErrorCode } from '../errors.js';
import { CredentialBroker } from './credential-broker.js';
import { cipherWith, fixedClock, InMemoryLeases, InMemoryTargets, K1, K2, NOW } from './in-memory-repositories.testing.js';
import { TargetRegistry } from './target-registry.js';

const SECRET = 'lease-me-password';
const config: BrokerConfig = { keyring: [K1], internalToken: 'x'.repeat(32), credentialLeaseSeconds: 120 };

async function given() {
  const targets = new InMemoryTargets();
  const leases = new InMemoryLeases();
  await new TargetRegistry(targets.asRepository(), cipherWith(K1), fixedClock).add({
    target: {
      name: 'billing',
      type: brokerV1.TargetType.TARGET_TYPE_POSTGRES,
      host: 'db.internal',
      port: 5432,
      database: 'billing',
      user: 'billing_rw',
      tls: brokerV1.TlsMode.TLS_MODE_DISABLE,
      labels: {},
      createdAt: undefined,
      hostKey: '',
    },
    secret: SECRET,
  });
  return { targets, leases };
}

describe('CredentialBroker', () => {
  it('checks out the secret with where to connect, under a lease of TRACEGATE_CREDENTIAL_LEASE_SECONDS, and records lease.issued without the secret', async () => {
    const { targets, leases } = await given();
    const broker = new CredentialBroker(targets.asRepository(), leases.asRepository(), cipherWith(K1), fixedClock, config);

    const lease = await broker.checkout({ target: 'billing', sessionId: 'session-1', identityId: 'identity-1' });

    assert.equal(lease.secret, SECRET);
    assert.equal(lease.user, 'billing_rw');
    assert.deepEqual(lease.expiresAt, { seconds: NOW.getTime() / 1000 + 120, nanos: 0 });
    assert.deepEqual(
      { host: lease.target?.host, port: lease.target?.port, database: lease.target?.database, tls: lease.target?.tls },
      { host: 'db.internal', port: 5432, database: 'billing', tls: brokerV1.TlsMode.TLS_MODE_DISABLE },
    );
    assert.deepEqual(leases.events, [
      {
        type: 'dev.tracegate.lease.issued.v1',
        subject: `leases/${lease.leaseId}`,
        key: 'billing',
        time: NOW,
        data: {
          leaseId: lease.leaseId,
          target: 'billing',
          sessionId: 'session-1',
          identityId: 'identity-1',
          user: 'billing_rw',
          issuedAt: NOW.toISOString(),
          expiresAt: new Date(NOW.getTime() + 120_000).toISOString(),
        },
      },
    ]);

    await broker.release(lease.leaseId);
    await broker.release(lease.leaseId);
    assert.deepEqual(leases.events.map((e) => e.type), ['dev.tracegate.lease.issued.v1', 'dev.tracegate.lease.released.v1'], 'a second release records nothing');
  });

  it('issues no lease when the secret does not decrypt, and says which key id', async () => {
    const { targets, leases } = await given();
    const broker = new CredentialBroker(targets.asRepository(), leases.asRepository(), cipherWith(K2), fixedClock, config);
    await assert.rejects(broker.checkout({ target: 'billing', sessionId: 's', identityId: 'i' }), (error: unknown) => {
      assert.ok(error instanceof BrokerError);
      assert.equal(error.code, BrokerErrorCode.DecryptionFailed);
      assert.match(error.message, /key id 'k1'/);
      return true;
    });
    assert.equal(leases.rows.size, 0);
    assert.deepEqual(leases.events, []);
  });

  it('refuses an unknown target, a missing session or identity, and a lease id that is not a UUID', async () => {
    const { targets, leases } = await given();
    const broker = new CredentialBroker(targets.asRepository(), leases.asRepository(), cipherWith(K1), fixedClock, config);
    const code = (c: BrokerErrorCode) => (error: unknown) => error instanceof BrokerError && error.code === c;
    await assert.rejects(broker.checkout({ target: 'nope', sessionId: 's', identityId: 'i' }), code(BrokerErrorCode.TargetNotFound));
    await assert.rejects(broker.checkout({ target: 'billing', sessionId: '', identityId: 'i' }), code(BrokerErrorCode.InvalidArgument));
    await assert.rejects(broker.checkout({ target: 'billing', sessionId: 's', identityId: '' }), code(BrokerErrorCode.InvalidArgument));
    await assert.rejects(broker.release('not-a-uuid'), code(BrokerErrorCode.LeaseNotFound));
  });
});
