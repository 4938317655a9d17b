import { Inject, Injectable } from '@nestjs/common';
import type { DataSource, EntityManager } from 'typeorm';
import { AUDIT_DATA_SOURCE } from '../../repositories/audit-database.js';
import { TraceEntity } from '../entities/trace.entity.js';

export interface TraceLink {
  readonly traceId: string;
  readonly sessionId: string;
  readonly target: string;
  readonly at: Date;
}

/** Stored traces and where they were attached. */
@Injectable()
export class TraceRepository {
  constructor(@Inject(AUDIT_DATA_SOURCE) private readonly db: DataSource) {}

  transaction<T>(work: (manager: EntityManager) => Promise<T>): Promise<T> {
    return this.db.transaction(work);
  }

  async insert(manager: EntityManager, trace: TraceEntity): Promise<void> {
    // save, not insert: insert's typing cannot take a jsonb column of arbitrary JSON.
    await manager.save(TraceEntity, trace);
  }

  find(id: string): Promise<TraceEntity | null> {
    return this.db.getRepository(TraceEntity).findOneBy({ id });
  }

  /** Idempotent: a trace attached again in the same session adds nothing. */
  async link(link: TraceLink, manager: EntityManager | DataSource = this.db): Promise<void> {
    await manager.query(`INSERT INTO audit.trace_links (trace_id, session_id, target, linked_at) VALUES ($1, $2, $3, $4) ON CONFLICT (trace_id, session_id) DO NOTHING`, [
      link.traceId,
      link.sessionId,
      link.target,
      link.at,
    ]);
  }

  async targetsOf(traceId: string): Promise<string[]> {
    const rows: { target: string }[] = await this.db.query(`SELECT DISTINCT target FROM audit.trace_links WHERE trace_id = $1 ORDER BY target`, [traceId]);
    return rows.map((r) => r.target);
  }
}
