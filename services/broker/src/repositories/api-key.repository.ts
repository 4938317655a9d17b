import { Inject, Injectable } from '@nestjs/common';
import { IsNull, type DataSource } from 'typeorm';
import { BrokerError, BrokerErrorCode } from '../errors.js';
import { ApiKeyEntity } from '../entities/api-key.entity.js';
import { SshKeyEntity } from '../entities/ssh-key.entity.js';
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

  /** Every identity's SSH keys, oldest first. */
  listSshKeys(): Promise<SshKeyEntity[]> {
    return this.db.getRepository(SshKeyEntity).find({ order: { addedAt: 'ASC', fingerprint: 'ASC' } });
  }

  /** The unrevoked API key named `name` that has the SSH key `fingerprint`: one query, whichever part does not match. */
  findActiveBySshKey(name: string, fingerprint: string): Promise<ApiKeyEntity | null> {
    return this.db
      .getRepository(ApiKeyEntity)
      .createQueryBuilder('key')
      .innerJoin(SshKeyEntity, 'ssh', 'ssh.api_key_id = key.id AND ssh.fingerprint = :fingerprint', { fingerprint })
      .where('key.name = :name AND key.revoked_at IS NULL', { name })
      .getOne();
  }

  /**
   * Adds the SSH key `sshKeyFor` makes for the named API key, with the key's row locked so that a
   * revocation cannot slip in between `sshKeyFor`'s look at it and the insert.
   */
  async addSshKey(name: string, sshKeyFor: (key: ApiKeyEntity) => { sshKey: SshKeyEntity; event: AccessEvent }): Promise<SshKeyEntity> {
    try {
      return await this.db.transaction(async (manager) => {
        const key = await manager.getRepository(ApiKeyEntity).findOne({ where: { name }, lock: { mode: 'pessimistic_write' } });
        if (!key) throw keyNotFound(name);
        const { sshKey, event } = sshKeyFor(key);
        await manager.insert(SshKeyEntity, sshKey);
        await this.events.record(manager, [event]);
        return sshKey;
      });
    } catch (error) {
      if (isUniqueViolation(error)) {
        throw new BrokerError(BrokerErrorCode.SshKeyExists, `this SSH key is already registered for '${name}'; \`tracegate key list\` shows its fingerprint`);
      }
      throw error;
    }
  }

  async removeSshKey(name: string, fingerprint: string, eventFor: (key: ApiKeyEntity) => AccessEvent): Promise<void> {
    await this.db.transaction(async (manager) => {
      const key = await manager.getRepository(ApiKeyEntity).findOne({ where: { name }, lock: { mode: 'pessimistic_write' } });
      if (!key) throw keyNotFound(name);
      const result = await manager.delete(SshKeyEntity, { apiKeyId: key.id, fingerprint });
      if (!result.affected) {
        throw new BrokerError(BrokerErrorCode.SshKeyNotFound, `'${name}' has no SSH key with fingerprint ${fingerprint}; \`tracegate key list\` shows its keys`);
      }
      await this.events.record(manager, [eventFor(key)]);
    });
  }

  /** Sets revoked_at once; revoking a revoked key changes nothing and records nothing. */
  async revoke(name: string, at: Date, eventFor: (key: ApiKeyEntity) => AccessEvent): Promise<ApiKeyEntity> {
    return this.db.transaction(async (manager) => {
      const key = await manager.getRepository(ApiKeyEntity).findOne({ where: { name }, lock: { mode: 'pessimistic_write' } });
      if (!key) throw keyNotFound(name);
      if (key.revokedAt) return key;
      await manager.update(ApiKeyEntity, { name, revokedAt: IsNull() }, { revokedAt: at });
      key.revokedAt = at;
      await this.events.record(manager, [eventFor(key)]);
      return key;
    });
  }
}

function keyNotFound(name: string): BrokerError {
  return new BrokerError(BrokerErrorCode.KeyNotFound, `no API key is named '${name}'; run \`tracegate key list\` to see the keys`);
}
