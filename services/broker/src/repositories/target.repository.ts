import { Inject, Injectable } from '@nestjs/common';
import type { DataSource } from 'typeorm';
import { BrokerError, BrokerErrorCode } from '../errors.js';
import { TargetEntity } from '../entities/target.entity.js';
import { AccessEventRecorder, type AccessEvent } from './access-event-recorder.js';
import { BROKER_DATA_SOURCE, isUniqueViolation } from './broker-database.js';
import type { SealedSecret } from './secret-cipher.js';

@Injectable()
export class TargetRepository {
  constructor(
    @Inject(BROKER_DATA_SOURCE) private readonly db: DataSource,
    private readonly events: AccessEventRecorder,
  ) {}

  async insert(target: TargetEntity, event: AccessEvent): Promise<void> {
    try {
      await this.db.transaction(async (manager) => {
        await manager.insert(TargetEntity, target);
        await this.events.record(manager, [event]);
      });
    } catch (error) {
      if (isUniqueViolation(error)) {
        throw new BrokerError(
          BrokerErrorCode.TargetExists,
          `target '${target.name}' is already registered; remove it first with \`tracegate target remove ${target.name}\` to replace it`,
        );
      }
      throw error;
    }
  }

  list(): Promise<TargetEntity[]> {
    return this.db.getRepository(TargetEntity).find({ order: { name: 'ASC' } });
  }

  findByName(name: string): Promise<TargetEntity | null> {
    return this.db.getRepository(TargetEntity).findOneBy({ name });
  }

  async remove(name: string, event: AccessEvent): Promise<void> {
    await this.db.transaction(async (manager) => {
      const result = await manager.delete(TargetEntity, { name });
      if (!result.affected) throw BrokerError.targetNotFound(name);
      await this.events.record(manager, [event]);
    });
  }

  /**
   * Re-seals every secret that `rewrap` returns a new sealing for, in one transaction with the
   * rows locked, and records an event for each. Returns how many changed.
   */
  async rewrapAll(
    rewrap: (target: TargetEntity) => SealedSecret | undefined,
    eventFor: (target: TargetEntity, sealed: SealedSecret) => AccessEvent,
  ): Promise<number> {
    return this.db.transaction(async (manager) => {
      const targets = await manager.getRepository(TargetEntity).find({ order: { name: 'ASC' }, lock: { mode: 'pessimistic_write' } });
      let changed = 0;
      for (const target of targets) {
        const sealed = rewrap(target);
        if (!sealed) continue;
        await manager.update(
          TargetEntity,
          { name: target.name },
          { secretCiphertext: sealed.ciphertext, secretNonce: sealed.nonce, secretAuthTag: sealed.authTag, secretKeyId: sealed.keyId },
        );
        await this.events.record(manager, [eventFor(target, sealed)]);
        changed += 1;
      }
      return changed;
    });
  }
}
