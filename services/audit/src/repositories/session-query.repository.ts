import { Inject, Injectable } from '@nestjs/common';
import type { DataSource } from 'typeorm';
import { SessionEntity } from '../entities/session.entity.js';
import { StatementEntity } from '../entities/statement.entity.js';
import { AUDIT_DATA_SOURCE } from './audit-database.js';

export interface SessionFilter {
  readonly target?: string;
  readonly identityId?: string;
  readonly identityName?: string;
  readonly limit: number;
}

/** Reads of the session projection. */
@Injectable()
export class SessionQueryRepository {
  constructor(@Inject(AUDIT_DATA_SOURCE) private readonly db: DataSource) {}

  /** Newest first; ties (sessions started in the same microsecond) by id, also descending. */
  list(filter: SessionFilter): Promise<SessionEntity[]> {
    const query = this.db.getRepository(SessionEntity).createQueryBuilder('s');
    if (filter.target) query.andWhere('s.target = :target', { target: filter.target });
    if (filter.identityId) query.andWhere('s.identity_id = :identityId', { identityId: filter.identityId });
    if (filter.identityName) query.andWhere('s.identity_name = :identityName', { identityName: filter.identityName });
    return query.orderBy('s.started_at', 'DESC').addOrderBy('s.id', 'DESC').limit(filter.limit).getMany();
  }

  /** How many sessions started in [since, until). */
  countStartedBetween(since: Date, until: Date): Promise<number> {
    return this.db.getRepository(SessionEntity).createQueryBuilder('s').where('s.started_at >= :since AND s.started_at < :until', { since, until }).getCount();
  }

  /** Sessions started in [since, until) in start order (ties by id), after the (start, id) cursor: an export's pages. */
  startedBetween(since: Date, until: Date, after: { startedAt: Date; id: string } | undefined, limit: number): Promise<SessionEntity[]> {
    const query = this.db.getRepository(SessionEntity).createQueryBuilder('s').where('s.started_at >= :since AND s.started_at < :until', { since, until });
    if (after) query.andWhere('(s.started_at, s.id) > (:afterAt, :afterId)', { afterAt: after.startedAt, afterId: after.id });
    return query.orderBy('s.started_at', 'ASC').addOrderBy('s.id', 'ASC').limit(limit).getMany();
  }

  findSession(id: string): Promise<SessionEntity | null> {
    return this.db.getRepository(SessionEntity).findOneBy({ id });
  }

  /** The recorded (masked) result rows of a session's statements, by statement id, in chunk order. */
  async resultRowsOf(sessionId: string): Promise<Map<string, (string | null)[][]>> {
    const chunks: { statement_id: string; rows: (string | null)[][] }[] = await this.db.query(
      `SELECT statement_id, rows FROM audit.statement_results WHERE session_id = $1 ORDER BY statement_id, chunk`,
      [sessionId],
    );
    const rows = new Map<string, (string | null)[][]>();
    for (const chunk of chunks) rows.set(chunk.statement_id, [...(rows.get(chunk.statement_id) ?? []), ...chunk.rows]);
    return rows;
  }

  statementsOf(sessionId: string): Promise<StatementEntity[]> {
    return this.db.getRepository(StatementEntity).find({ where: { sessionId }, order: { sequence: 'ASC' } });
  }
}
