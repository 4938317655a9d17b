import { Inject, Injectable } from '@nestjs/common';
import type { DataSource, EntityManager } from 'typeorm';
import type { SessionEvent } from '../domain/session-events.js';
import { evolve, type SessionSlice } from '../domain/session-projection.js';
import { SessionEntity } from '../entities/session.entity.js';
import { StatementEntity } from '../entities/statement.entity.js';
import { AUDIT_DATA_SOURCE } from './audit-database.js';

export type ApplyOutcome = 'applied' | 'duplicate';

/**
 * Writes the session projection. Each event is applied in one transaction together with its id in
 * `audit.processed_events`: either both commit or neither does, so a redelivered event (after a
 * crash, a restart or a rebalance) finds its id and has no second effect.
 */
@Injectable()
export class SessionProjectionRepository {
  constructor(@Inject(AUDIT_DATA_SOURCE) private readonly db: DataSource) {}

  apply(event: SessionEvent, type: string): Promise<ApplyOutcome> {
    return this.db.transaction(async (manager) => {
      // A concurrent delivery of the same event blocks here on the uncommitted row, then sees it.
      const claimed: unknown[] = await manager.query(
        `INSERT INTO audit.processed_events (event_id, type) VALUES ($1, $2) ON CONFLICT (event_id) DO NOTHING RETURNING event_id`,
        [event.eventId, type],
      );
      if (claimed.length === 0) return 'duplicate';
      const before = await this.load(manager, event);
      const after = evolve(before, event);
      if (after.session) await manager.upsert(SessionEntity, after.session as SessionEntity, ['id']);
      if (after.statement) await manager.upsert(StatementEntity, after.statement as StatementEntity, ['sessionId', 'statementId']);
      return 'applied';
    });
  }

  /** The generation of this schema's projection: a fresh one after the schema was dropped. */
  async generation(): Promise<string> {
    const rows: { generation: string }[] = await this.db.query(`SELECT generation::text AS generation FROM audit.projection WHERE name = 'sessions'`);
    const generation = rows[0]?.generation;
    if (!generation) throw new Error('audit.projection has no row for the sessions projection; the initial migration did not run completely');
    return generation;
  }

  private async load(manager: EntityManager, event: SessionEvent): Promise<SessionSlice> {
    // Locked, so two deliveries of different events of one session (a consumer group rebalancing)
    // apply one after the other.
    const session = await manager.findOne(SessionEntity, { where: { id: event.sessionId }, lock: { mode: 'pessimistic_write' } });
    if (event.kind === 'started' || event.kind === 'ended') return { session: session ?? undefined, statement: undefined };
    const statement = await manager.findOne(StatementEntity, { where: { sessionId: event.sessionId, statementId: event.statementId } });
    return { session: session ?? undefined, statement: statement ?? undefined };
  }
}
