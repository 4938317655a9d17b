import { Inject, Injectable } from '@nestjs/common';
import { IsNull, type DataSource } from 'typeorm';
import { BrokerError, BrokerErrorCode } from '../errors.js';
import { ApiKeyEntity } from '../entities/api-key.entity.js';
import { AccessEventRecorder, type AccessEvent } from './access-event-recorder.js';
import { BROKER_DATA_SOURCE, isUniqueViolation } from './broker-database.js';

@Injectable()
export class ApiKeyRepository {
  constructor(
    @Inject(BROKER_DATA_SOURCE) private readonly db: DataSource,
    private readonly events: AccessEventRecorder,
  ) {}

  async insert(key: ApiKeyEntity, event: AccessEvent): Promise<void> {
    try {
      await this.db.transaction(async (manager) => {
        await manager.insert(ApiKeyEntity, key);
        await this.events.record(manager, [event]);
      });
    } catch (error) {
      if (isUniqueViolation(error)) {
        throw new BrokerError(
          BrokerErrorCode.KeyExists,
          `an API key named '${key.name}' already exists (names stay taken after a key is revoked); choose another name`,
        );
      }
      throw error;
    }
  }

  list(): Promise<ApiKeyEntity[]> {
    return this.db.getRepository(ApiKeyEntity).find({ order: { createdAt: 'ASC', name: 'ASC' } });
  }

  findByName(name: string): Promise<ApiKeyEntity | null> {
    return this.db.getRepository(ApiKeyEntity).findOneBy({ name });
  }

  /** Sets revoked_at once; revoking a revoked key changes nothing and records nothing. */
  async revoke(name: string, at: Date, eventFor: (key: ApiKeyEntity) => AccessEvent): Promise<ApiKeyEntity> {
    return this.db.transaction(async (manager) => {
      const key = await manager.getRepository(ApiKeyEntity).findOne({ where: { name }, lock: { mode: 'pessimistic_write' } });
      if (!key) {
        throw new BrokerError(BrokerErrorCode.KeyNotFound, `no API key is named '${name}'; run \`tracegate key list\` to see the keys`);
      }
      if (key.revokedAt) return key;
      await manager.update(ApiKeyEntity, { name, revokedAt: IsNull() }, { revokedAt: at });
      key.revokedAt = at;
      await this.events.record(manager, [eventFor(key)]);
      return key;
    });
  }
}
