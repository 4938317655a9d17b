import { Inject, Injectable } from '@nestjs/common';
import { brokerV1 } from '@tracegate/contracts';
import { BROKER_CONFIG, type BrokerConfig } from '../broker.config.js';
import { BrokerError, BrokerErrorCode } from '../errors.js';
import type { CredentialLeaseEntity } from '../entities/credential-lease.entity.js';
import type { AccessEvent } from '../repositories/access-event-recorder.js';
import { Clock } from '../repositories/clock.js';
import { CredentialLeaseRepository } from '../repositories/credential-lease.repository.js';
import { SecretCipher } from '../repositories/secret-cipher.js';
import { TargetRepository } from '../repositories/target.repository.js';
import { timestampOf } from './proto-mapping.js';
import { sealedOf, toProtoTarget, validateTargetName } from './target-registry.js';

const LEASE_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Hands the gateway a target's credential under a short lease, and records who took it for which session. */
@Injectable()
export class CredentialBroker {
  constructor(
    private readonly targets: TargetRepository,
    private readonly leases: CredentialLeaseRepository,
    private readonly cipher: SecretCipher,
    private readonly clock: Clock,
    @Inject(BROKER_CONFIG) private readonly config: BrokerConfig,
  ) {}

  async checkout(request: brokerV1.CheckoutCredentialRequest): Promise<brokerV1.CheckoutCredentialResponse> {
    validateTargetName(request.target, 'target');
    if (!request.sessionId) throw BrokerError.invalidArgument('session_id', 'is required: the gateway session the credential is for');
    if (!request.identityId) throw BrokerError.invalidArgument('identity_id', 'is required: the identity the session belongs to');
    const target = await this.targets.findByName(request.target);
    if (!target) throw BrokerError.targetNotFound(request.target);
    // Decrypt first: a secret that cannot be opened must not leave a lease behind.
    const secret = this.cipher.open(target.name, sealedOf(target));
    const issuedAt = this.clock.now();
    const lease: CredentialLeaseEntity = {
      id: this.leases.newId(),
      target: target.name,
      sessionId: request.sessionId,
      identityId: request.identityId,
      issuedAt,
      expiresAt: new Date(issuedAt.getTime() + this.config.credentialLeaseSeconds * 1000),
      releasedAt: null,
    };
    await this.leases.insert(
      lease,
      leaseEvent('dev.tracegate.lease.issued.v1', lease, issuedAt, {
        leaseId: lease.id,
        target: lease.target,
        sessionId: lease.sessionId,
        identityId: lease.identityId,
        user: target.user,
        issuedAt: lease.issuedAt.toISOString(),
        expiresAt: lease.expiresAt.toISOString(),
      }),
    );
    return {
      leaseId: lease.id,
      user: target.user,
      secret,
      expiresAt: timestampOf(lease.expiresAt),
      target: toProtoTarget(target),
    };
  }

  async release(leaseId: string): Promise<void> {
    if (!LEASE_ID.test(leaseId)) {
      throw new BrokerError(BrokerErrorCode.LeaseNotFound, `no credential lease has id '${leaseId.slice(0, 80)}'; lease ids are the UUIDs CheckoutCredential returns`);
    }
    const now = this.clock.now();
    await this.leases.release(leaseId, now, (lease) =>
      leaseEvent('dev.tracegate.lease.released.v1', lease, now, { leaseId: lease.id, target: lease.target, sessionId: lease.sessionId }),
    );
  }
}

function leaseEvent(type: string, lease: CredentialLeaseEntity, time: Date, data: Record<string, unknown>): AccessEvent {
  return { type, subject: `leases/${lease.id}`, key: lease.target, data, time };
}
