import { Inject, Injectable } from '@nestjs/common';
import type { DataSource } from 'typeorm';
import type { CloudEvent } from '@tracegate/events';
import type { CheckpointData } from '../domain/checkpoint.js';
import { AUDIT_DATA_SOURCE } from './audit-database.js';

/** The signed checkpoints, as appended to tracegate.audit.v1, with the heads they cover by session. */
@Injectable()
export class CheckpointRepository {
  constructor(@Inject(AUDIT_DATA_SOURCE) private readonly db: DataSource) {}

  store(event: CloudEvent<CheckpointData>): Promise<void> {
    return this.db.transaction(async (manager) => {
      const inserted: unknown[] = await manager.query(
        `INSERT INTO audit.checkpoints (id, event_id, signed_at, key_id, event) VALUES ($1, $2, $3, $4, $5::jsonb) ON CONFLICT (id) DO NOTHING RETURNING id`,
        [event.data.checkpointId, event.id, event.data.signedAt, event.data.keyId, JSON.stringify(event)],
      );
      if (inserted.length === 0) return;
      await manager.query(
        `INSERT INTO audit.checkpoint_heads (checkpoint_id, session_id, sequence, hash)
         SELECT $1, s, q, h FROM unnest($2::text[], $3::bigint[], $4::text[]) AS x(s, q, h)`,
        [event.data.checkpointId, event.data.heads.map((h) => h.sessionId), event.data.heads.map((h) => h.sequence), event.data.heads.map((h) => h.hash)],
      );
    });
  }

  /** The newest checkpoint: the next one links to it. */
  async last(): Promise<CloudEvent | undefined> {
    const rows: { event: CloudEvent }[] = await this.db.query(`SELECT event FROM audit.checkpoints ORDER BY (event->>'sequence')::bigint DESC LIMIT 1`);
    return rows[0]?.event;
  }
}
