import { Inject, Injectable } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import { EventLogError, GENESIS, sealEvent, TOPICS, type ChainHead, type CloudEvent, type EventLog } from '@tracegate/events';
import { EVENT_LOG } from '@tracegate/runtime';
import { AuditError, AuditErrorCode } from '../../errors.js';

/** An event the audit service writes itself: reads of the trail, reader grants, traces. */
export interface WrittenEvent {
  readonly topic: typeof TOPICS.audit.name | typeof TOPICS.traces.name;
  readonly type: string;
  /** The aggregate: `readers/<name>` for audit access, the trace id for a trace. */
  readonly subject: string;
  readonly key: string;
  readonly data: Record<string, unknown>;
  readonly time: Date;
}

const SOURCE = '/tracegate/audit';

/**
 * Appends events inside the transaction that makes the change they describe (or, for a read,
 * before the read is answered). The chain head row is locked for the transaction, so concurrent
 * events of one aggregate link in order; the log acknowledges before the transaction commits, so
 * a change the log did not take is rolled back, and a read it did not take is not answered.
 */
@Injectable()
export class AuditEventWriter {
  constructor(@Inject(EVENT_LOG) private readonly eventLog: EventLog) {}

  /**
   * `beforeAppend` runs once the event is sealed and before the log takes it: rows that carry the
   * event id are written there, so the projection, which may see the event before this transaction
   * commits, waits on them instead of racing them.
   */
  async write(manager: EntityManager, written: WrittenEvent, beforeAppend?: (event: CloudEvent) => Promise<void>): Promise<CloudEvent> {
    await manager.query(`INSERT INTO audit.written_event_chains (subject, sequence, hash) VALUES ($1, 0, '') ON CONFLICT (subject) DO NOTHING`, [written.subject]);
    const rows: { sequence: string; hash: string }[] = await manager.query(`SELECT sequence::text AS sequence, hash FROM audit.written_event_chains WHERE subject = $1 FOR UPDATE`, [written.subject]);
    const row = rows[0];
    const head: ChainHead = row && Number(row.sequence) > 0 ? { sequence: Number(row.sequence), hash: row.hash } : GENESIS;
    const event = sealEvent({ type: written.type, subject: written.subject, source: SOURCE, data: written.data, time: written.time }, head);
    await beforeAppend?.(event);
    try {
      await this.eventLog.append([{ topic: written.topic, key: written.key, event }]);
    } catch (error) {
      if (!(error instanceof EventLogError)) throw error;
      throw new AuditError(
        AuditErrorCode.Unavailable,
        `the event log did not record this (${error.message}), so nothing was done; try again once the event log is available`,
        { cause: error },
      );
    }
    await manager.query(`UPDATE audit.written_event_chains SET sequence = $2, hash = $3 WHERE subject = $1`, [written.subject, event.sequence, event.hash]);
    return event;
  }
}
