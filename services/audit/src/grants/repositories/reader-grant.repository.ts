import { Inject, Injectable } from '@nestjs/common';
import { IsNull, type DataSource, type EntityManager } from 'typeorm';
import { AUDIT_DATA_SOURCE } from '../../repositories/audit-database.js';
import { ReaderGrantEntity } from '../entities/reader-grant.entity.js';

/** Reader grants in audit.reader_grants. */
@Injectable()
export class ReaderGrantRepository {
  constructor(@Inject(AUDIT_DATA_SOURCE) private readonly db: DataSource) {}

  transaction<T>(work: (manager: EntityManager) => Promise<T>): Promise<T> {
    return this.db.transaction(work);
  }

  async insert(manager: EntityManager, grant: ReaderGrantEntity): Promise<void> {
    await manager.insert(ReaderGrantEntity, grant);
  }

  /** Locked for the transaction, so two revocations of one grant take turns. */
  findForUpdate(manager: EntityManager, id: string): Promise<ReaderGrantEntity | null> {
    return manager.findOne(ReaderGrantEntity, { where: { id }, lock: { mode: 'pessimistic_write' } });
  }

  async markRevoked(manager: EntityManager, id: string, at: Date): Promise<void> {
    await manager.update(ReaderGrantEntity, { id, revokedAt: IsNull() }, { revokedAt: at });
  }

  /** Every grant of a reader, revoked and expired ones too: a refusal names the one that lapsed. */
  ofReader(reader: string): Promise<ReaderGrantEntity[]> {
    return this.db.getRepository(ReaderGrantEntity).find({ where: { reader }, order: { createdAt: 'DESC' } });
  }

  /** Newest first; only live ones unless asked. */
  list(filter: { readonly reader?: string; readonly includeInactive: boolean; readonly now: Date }): Promise<ReaderGrantEntity[]> {
    const query = this.db.getRepository(ReaderGrantEntity).createQueryBuilder('g');
    if (filter.reader) query.andWhere('g.reader = :reader', { reader: filter.reader });
    if (!filter.includeInactive) query.andWhere('g.revoked_at IS NULL AND g.expires_at > :now', { now: filter.now });
    return query.orderBy('g.created_at', 'DESC').addOrderBy('g.id', 'DESC').limit(1000).getMany();
  }
}
