import { randomUUID } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import type { DataSource } from 'typeorm';
import { BrokerError, BrokerErrorCode } from '../errors.js';
import { CredentialLeaseEntity } from '../entities/credential-lease.entity.js';
import { AccessEventRecorder, type AccessEvent } from './access-event-recorder.js';
import { BROKER_DATA_SOURCE } from './broker-database.js';

@Injectable()
export class CredentialLeaseRepository {
  constructor(
    @Inject(BROKER_DATA_SOURCE) private readonly db: DataSource,
    private readonly events: AccessEventRecorder,
  ) {}

  newId(): string {
    return randomUUID();
  }

  async insert(lease: CredentialLeaseEntity, event: AccessEvent): Promise<void> {
    await this.db.transaction(async (manager) => {
      await manager.insert(CredentialLeaseEntity, lease);
      await this.events.record(manager, [event]);
    });
  }

  /** Sets released_at once; releasing a released lease changes nothing and records nothing. */
  async release(id: string, at: Date, eventFor: (lease: CredentialLeaseEntity) => AccessEvent): Promise<void> {
    await this.db.transaction(async (manager) => {
      const lease = await manager.getRepository(CredentialLeaseEntity).findOne({ where: { id }, lock: { mode: 'pessimistic_write' } });
      if (!lease) {
        throw new BrokerError(BrokerErrorCode.LeaseNotFound, `no credential lease has id '${id}'; it may never have been issued by this broker`);
      }
      if (lease.releasedAt) return;
      await manager.update(CredentialLeaseEntity, { id }, { releasedAt: at });
      await this.events.record(manager, [eventFor(lease)]);
    });
  }
}
