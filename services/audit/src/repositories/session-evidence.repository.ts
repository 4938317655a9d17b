import { Inject, Injectable } from '@nestjs/common';
import type { DataSource } from 'typeorm';
import { TOPICS, type CloudEvent } from '@tracegate/events';
import { SERVICE_CONTEXT, type ServiceContext } from '@tracegate/runtime';
import type { CheckpointData } from '../domain/checkpoint.js';
import type { StoredResultChunk } from '../domain/session-verification.js';
import type { SessionRecord, StatementRecord } from '../domain/session-projection.js';
import { AUDIT_DATA_SOURCE } from './audit-database.js';
import { sessionOfRow, statementOfRow } from './session-projection.repository.js';

/** Where the PostgreSQL event log keeps its records (PostgresEventLog's default schema, in the service's database). */
export const POSTGRES_LOG_EVENTS = 'tracegate_log.events';

/** A checkpoint head as stored, with the checkpoint event that signed it. */
export interface StoredCheckpointHead {
  readonly checkpointId: string;
  readonly sequence: number;
  readonly hash: string;
  readonly checkpoint: CloudEvent;
}

/**
 * Reads what verification and replay compare: the session's events straight from the log (when
 * the log is the PostgreSQL one, a query by key), the projection's copy of them, its rows, and
 * the checkpoints that cover it.
 */
@Injectable()
export class SessionEvidenceRepository {
  constructor(
    @Inject(AUDIT_DATA_SOURCE) private readonly db: DataSource,
    @Inject(SERVICE_CONTEXT) private readonly context: ServiceContext,
  ) {}

  /** Whether {@link logEvents} reads the log itself (PostgreSQL) rather than nothing (Kafka). */
  get readsLog(): boolean {
    return this.context.eventLog.kind === 'postgres';
  }

  /**
   * The log's records of the events the projection applied (by their ids, which the log indexes;
   * events not projected yet are checked once they are), in log order; undefined when the log is Kafka.
   */
  async logEvents(eventIds: readonly string[]): Promise<CloudEvent[] | undefined> {
    if (!this.readsLog) return undefined;
    if (eventIds.length === 0) return [];
    const rows: { event: CloudEvent }[] = await this.db.query(`SELECT event FROM ${POSTGRES_LOG_EVENTS} WHERE event_id = ANY($1::text[]) AND topic = $2 ORDER BY position`, [
      [...eventIds],
      TOPICS.sessions.name,
    ]);
    return rows.map((r) => r.event);
  }

  async copiedEvents(sessionId: string): Promise<CloudEvent[]> {
    const rows: { event: CloudEvent }[] = await this.db.query(`SELECT event FROM audit.session_events WHERE session_id = $1 ORDER BY sequence, position`, [sessionId]);
    return rows.map((r) => r.event);
  }

  async session(sessionId: string): Promise<SessionRecord | undefined> {
    const rows: Record<string, unknown>[] = await this.db.query(`SELECT * FROM audit.sessions WHERE id = $1`, [sessionId]);
    return rows[0] ? sessionOfRow(rows[0]) : undefined;
  }

  async statements(sessionId: string): Promise<StatementRecord[]> {
    const rows: Record<string, unknown>[] = await this.db.query(`SELECT * FROM audit.statements WHERE session_id = $1 ORDER BY sequence`, [sessionId]);
    return rows.map(statementOfRow);
  }

  /** The stored result chunks of the session, as verification compares them with the result events. */
  async resultChunks(sessionId: string): Promise<StoredResultChunk[]> {
    const rows: { statement_id: string; chunk: number; event_id: string; rows: (string | null)[][] }[] = await this.db.query(
      `SELECT statement_id, chunk, event_id, rows FROM audit.statement_results WHERE session_id = $1 ORDER BY statement_id, chunk`,
      [sessionId],
    );
    return rows.map((r) => ({ statementId: r.statement_id, chunk: r.chunk, eventId: r.event_id, rows: r.rows }));
  }

  /**
   * The heads of this session that checkpoints signed, read from the signed checkpoint events
   * themselves (the heads table only finds them), so changing the table proves nothing.
   */
  async checkpointHeads(sessionId: string): Promise<StoredCheckpointHead[]> {
    const rows: { checkpoint_id: string; event: CloudEvent<CheckpointData> }[] = await this.db.query(
      `SELECT DISTINCT h.checkpoint_id, c.event
         FROM audit.checkpoint_heads h JOIN audit.checkpoints c ON c.id = h.checkpoint_id
        WHERE h.session_id = $1`,
      [sessionId],
    );
    return rows.map((r) => {
      const signed = Array.isArray(r.event.data?.heads) ? r.event.data.heads.find((h) => h.sessionId === sessionId) : undefined;
      return { checkpointId: r.checkpoint_id, sequence: signed?.sequence ?? 0, hash: signed?.hash ?? '', checkpoint: r.event };
    });
  }

  /** Session ids after `cursor` in id order (the periodic verifier's walk). */
  async sessionIdsAfter(cursor: string, limit: number): Promise<string[]> {
    const rows: { id: string }[] = await this.db.query(`SELECT id FROM audit.sessions WHERE id > $1 ORDER BY id LIMIT $2`, [cursor, limit]);
    return rows.map((r) => r.id);
  }
}
