import { Inject, Injectable } from '@nestjs/common';
import type { DataSource, EntityManager } from 'typeorm';
import type { CloudEvent } from '@tracegate/events';
import { AUDIT_DATA_SOURCE } from '../../repositories/audit-database.js';

export type TraceProjectionOutcome = 'applied' | 'unchanged' | 'skipped';

interface SubmittedData {
  readonly trace?: {
    readonly id?: string;
    readonly identityId?: string;
    readonly identityName?: string;
    readonly agent?: { readonly name?: string; readonly model?: string };
    readonly confidence?: number;
    readonly tags?: readonly string[];
    readonly sessionId?: string;
    readonly sizeBytes?: number;
    readonly createdAt?: string;
  };
  readonly target?: string;
}

interface GrantData {
  readonly grantId: string;
  readonly reader: string;
  readonly agent?: string;
  readonly target?: string;
  readonly from?: string;
  readonly until?: string;
  readonly expiresAt: string;
  readonly reason?: string;
  readonly revokedAt?: string;
}

/**
 * Applies the events the audit service writes itself (traces, reader grants, reads) to its tables.
 * Live, every row is already there (written in the transaction that appended the event), so each
 * apply finds it and changes nothing; on a fresh schema it rebuilds them from the log. Keys are
 * natural (trace id, grant id, chain sequence), so a redelivered event has no second effect.
 */
@Injectable()
export class TraceProjectionRepository {
  constructor(@Inject(AUDIT_DATA_SOURCE) private readonly db: DataSource) {}

  async generation(): Promise<string> {
    const rows: { generation: string }[] = await this.db.query(`SELECT generation::text AS generation FROM audit.projection WHERE name = 'traces'`);
    const generation = rows[0]?.generation;
    if (!generation) throw new Error("audit.projection has no row for the traces projection; the migration 'TracesProjection1763820000000' did not run");
    return generation;
  }

  apply(event: CloudEvent): Promise<TraceProjectionOutcome> {
    // Other writers' aggregates share these topics (integrity checkpoints): not this projection's.
    if (event.type !== 'dev.tracegate.trace.submitted.v1' && !event.subject.startsWith('readers/')) return Promise.resolve('skipped');
    return this.db.transaction(async (manager) => {
      const changed = await this.applyData(manager, event);
      const moved = await this.moveChainHead(manager, event);
      return changed || moved ? 'applied' : 'unchanged';
    });
  }

  /** Whether the event changed a row (false: it was there already). Reads carry no row. */
  private async applyData(manager: EntityManager, event: CloudEvent): Promise<boolean> {
    switch (event.type) {
      case 'dev.tracegate.trace.submitted.v1': {
        const { trace, target } = event.data as SubmittedData;
        if (!trace?.id) return false;
        const inserted: unknown[] = await manager.query(
          `INSERT INTO audit.traces (id, identity_id, identity_name, agent_name, model, confidence, tags, session_id, size_bytes, document, event_id, created_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT (id) DO NOTHING RETURNING id`,
          [
            trace.id,
            trace.identityId ?? '',
            trace.identityName ?? '',
            trace.agent?.name || trace.identityName || '',
            trace.agent?.model ?? '',
            trace.confidence ?? 0,
            trace.tags ?? [],
            trace.sessionId ?? '',
            trace.sizeBytes ?? 0,
            JSON.stringify(trace),
            event.id,
            trace.createdAt ?? event.time,
          ],
        );
        if (trace.sessionId && target) {
          await manager.query(`INSERT INTO audit.trace_links (trace_id, session_id, target, linked_at) VALUES ($1, $2, $3, $4) ON CONFLICT (trace_id, session_id) DO NOTHING`, [
            trace.id,
            trace.sessionId,
            target,
            event.time,
          ]);
        }
        return inserted.length > 0;
      }
      case 'dev.tracegate.auditaccess.granted.v1': {
        const grant = event.data as GrantData;
        const inserted: unknown[] = await manager.query(
          `INSERT INTO audit.reader_grants (id, reader, agent, target, window_from, window_until, expires_at, created_at, revoked_at, reason)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, $9) ON CONFLICT (id) DO NOTHING RETURNING id`,
          [grant.grantId, grant.reader, grant.agent || null, grant.target || null, grant.from || null, grant.until || null, grant.expiresAt, event.time, grant.reason ?? ''],
        );
        return inserted.length > 0;
      }
      case 'dev.tracegate.auditaccess.revoked.v1': {
        const grant = event.data as GrantData;
        const updated: unknown[] = await manager.query(`UPDATE audit.reader_grants SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL RETURNING id`, [grant.grantId, grant.revokedAt ?? event.time]);
        return updated.length > 0;
      }
      default:
        return false;
    }
  }

  /**
   * Moves the aggregate's chain head up to this event, so the next event the service writes links
   * to the last one on the log, also after a rebuild. Live, the writer's row lock makes this wait
   * for its transaction, which has already moved the head: nothing changes.
   */
  private async moveChainHead(manager: EntityManager, event: CloudEvent): Promise<boolean> {
    await manager.query(`INSERT INTO audit.written_event_chains (subject, sequence, hash) VALUES ($1, 0, '') ON CONFLICT (subject) DO NOTHING`, [event.subject]);
    const moved: unknown[] = await manager.query(`UPDATE audit.written_event_chains SET sequence = $2, hash = $3 WHERE subject = $1 AND sequence < $2 RETURNING subject`, [
      event.subject,
      event.sequence,
      event.hash,
    ]);
    return moved.length > 0;
  }
}
