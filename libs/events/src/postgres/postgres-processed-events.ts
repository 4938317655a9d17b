import pg from 'pg';
import type { ProcessedEventStore } from '../idempotent-handler.js';
import { advisoryLockKey, quotedSchema } from './schema.js';

export interface PostgresProcessedEventsOptions {
  /** The schema of the `processed_events` table, in the projection's own database. Default `tracegate_consumers`. */
  readonly schema?: string;
}

/**
 * Processed event ids kept in the projection's database. The id is inserted in the same
 * transaction as the effect, so either both happen or neither does: a redelivered event finds its
 * id and is skipped; an effect that failed left no id behind and is applied on redelivery.
 *
 * The effect receives the transaction's connection and must make its writes through it.
 */
export class PostgresProcessedEvents implements ProcessedEventStore<pg.PoolClient> {
  private readonly schema: string;
  private readonly table: string;
  private opening: Promise<void> | undefined;

  constructor(
    private readonly pool: pg.Pool,
    options: PostgresProcessedEventsOptions = {},
  ) {
    this.schema = options.schema ?? 'tracegate_consumers';
    this.table = `${quotedSchema(this.schema)}.processed_events`;
  }

  /** Creates the table if missing; called by {@link runOnce}, safe to repeat. */
  open(): Promise<void> {
    this.opening ??= this.createTable().catch((error: unknown) => {
      this.opening = undefined;
      throw error;
    });
    return this.opening;
  }

  async runOnce(consumer: string, eventId: string, effect: (client: pg.PoolClient) => Promise<void>): Promise<boolean> {
    await this.open();
    const client = await this.pool.connect();
    let healthy = true;
    try {
      await client.query('BEGIN');
      // A concurrent delivery of the same event (another subscriber that just took the group
      // over) blocks here on the uncommitted row until the first transaction ends, then sees it.
      const claimed = await client.query(
        `INSERT INTO ${this.table} (consumer, event_id) VALUES ($1, $2) ON CONFLICT (consumer, event_id) DO NOTHING`,
        [consumer, eventId],
      );
      if (claimed.rowCount === 0) {
        await client.query('ROLLBACK');
        return false;
      }
      await effect(client);
      await client.query('COMMIT');
      return true;
    } catch (error) {
      try {
        await client.query('ROLLBACK');
      } catch {
        healthy = false;
      }
      throw error;
    } finally {
      client.release(!healthy);
    }
  }

  /** Whether `consumer` has applied `eventId` (for checks and tests). */
  async has(consumer: string, eventId: string): Promise<boolean> {
    await this.open();
    const { rows } = await this.pool.query(`SELECT 1 FROM ${this.table} WHERE consumer = $1 AND event_id = $2`, [consumer, eventId]);
    return rows.length > 0;
  }

  private async createTable(): Promise<void> {
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      await client.query('SELECT pg_advisory_xact_lock($1::bigint)', [advisoryLockKey(`${this.schema}:processed-events`)]);
      await client.query(`CREATE SCHEMA IF NOT EXISTS ${quotedSchema(this.schema)}`);
      await client.query(`
        CREATE TABLE IF NOT EXISTS ${this.table} (
          consumer     text        NOT NULL,
          event_id     text        NOT NULL,
          processed_at timestamptz NOT NULL DEFAULT now(),
          PRIMARY KEY (consumer, event_id)
        )`);
      await client.query('COMMIT');
      client.release();
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      client.release(true);
      throw error;
    }
  }
}
