import pg from 'pg';
import { cloudEventProblems } from '../cloud-event.js';
import {
  batchesOf,
  EventLogError,
  EventLogErrorCode,
  type AppendReceipt,
  type DeliveredEvent,
  type EventLog,
  type LogRecord,
  type SubscribeOptions,
  type Subscription,
} from '../event-log.js';
import { GroupCommitter } from '../group-commit.js';
import type { TopicSpec } from '../topic-catalogue.js';
import { advisoryLockKey, quotedSchema } from './schema.js';

export interface PostgresEventLogOptions {
  /** The schema holding the log's tables. Default `tracegate_log`. */
  readonly schema?: string;
  /** The LISTEN/NOTIFY channel appends announce themselves on. Default `<schema>_appended`. */
  readonly channel?: string;
  /**
   * How often an idle subscription reads the table even without a notification: the fallback for
   * a notification lost with a connection. Default 2000 ms.
   */
  readonly pollIntervalMs?: number;
  /** How often a subscriber waiting for its group's lock tries again. Default 250 ms. */
  readonly takeoverPollMs?: number;
  /** Rows a subscription reads at a time. Default 500. */
  readonly batchSize?: number;
  /** Most records in one write (one transaction). Default 5000. */
  readonly maxRecordsPerWrite?: number;
  /**
   * Told about failures the log recovers from by itself: a handler that threw (its event will be
   * delivered again), a subscription connection lost (it reconnects). Default: `console.warn`.
   */
  readonly onError?: (message: string, error: unknown) => void;
}

type AppendOutcome = AppendReceipt | EventLogError;

interface StoredRow {
  event_id: string;
  position: string;
  topic: string;
  key: string;
  hash: string | null;
}

const DEFAULT_SCHEMA = 'tracegate_log';
const NOTIFY_PAYLOAD_LIMIT = 7000; // PostgreSQL refuses payloads of 8000 bytes or more.

/**
 * The event log in PostgreSQL: the embedded all-in-one adapter of the {@link EventLog} port.
 *
 * Positions are the `position` column (a bigserial), global to the table and increasing in commit
 * order; a receipt's and a delivery's `position` is that number as decimal text. A consumer group
 * commits one position per topic.
 */
export class PostgresEventLog implements EventLog {
  readonly kind = 'postgres' as const;

  private readonly pool: pg.Pool;
  private readonly ownsPool: boolean;
  private readonly schema: string;
  private readonly sql: { events: string; offsets: string };
  private readonly channel: string;
  private readonly options: Required<Omit<PostgresEventLogOptions, 'schema' | 'channel'>>;
  private readonly committer: GroupCommitter<LogRecord, AppendOutcome>;
  private readonly subscriptions = new Set<PostgresSubscription>();
  private opening: Promise<void> | undefined;
  private closing: Promise<void> | undefined;

  /** Creates the log and its schema; rejects with {@link EventLogError} Unavailable if PostgreSQL cannot be reached. */
  static async connect(database: pg.Pool | string, options: PostgresEventLogOptions = {}): Promise<PostgresEventLog> {
    const log = new PostgresEventLog(database, options);
    try {
      await log.open();
    } catch (error) {
      await log.close();
      throw error;
    }
    return log;
  }

  /**
   * `database` is a pool the caller owns (and ends), or a connection string for a pool this log
   * owns. A subscription keeps one connection of the pool for as long as it runs.
   */
  constructor(database: pg.Pool | string, options: PostgresEventLogOptions = {}) {
    this.schema = options.schema ?? DEFAULT_SCHEMA;
    const schemaSql = quotedSchema(this.schema);
    this.sql = { events: `${schemaSql}.events`, offsets: `${schemaSql}.consumer_offsets` };
    this.channel = options.channel ?? `${this.schema}_appended`;
    this.options = {
      pollIntervalMs: options.pollIntervalMs ?? 2000,
      takeoverPollMs: options.takeoverPollMs ?? 250,
      batchSize: options.batchSize ?? 500,
      maxRecordsPerWrite: options.maxRecordsPerWrite ?? 5000,
      onError: options.onError ?? ((message, error) => console.warn(`${message}:`, error)),
    };
    if (typeof database === 'string') {
      this.pool = new pg.Pool({ connectionString: database, connectionTimeoutMillis: 10_000 });
      this.ownsPool = true;
    } else {
      this.pool = database;
      this.ownsPool = false;
    }
    // An idle connection that breaks (server restart) is reported on the pool; unhandled, the
    // 'error' event would end the process. The pool replaces the connection on next use.
    this.pool.on('error', this.onIdleConnectionError);
    this.committer = new GroupCommitter((records) => this.write(records), this.options.maxRecordsPerWrite);
  }

  /** How many transactions appends have taken: fewer than append calls when grouping works. */
  get writeCount(): number {
    return this.committer.writeCount;
  }

  /** Creates the schema, tables and trigger if missing. Called by every operation; safe to repeat. */
  open(): Promise<void> {
    if (this.closing) return Promise.reject(this.closedError('open the event log'));
    this.opening ??= this.createSchema().catch((error: unknown) => {
      this.opening = undefined; // let a later call try again once PostgreSQL is back
      throw new EventLogError(
        EventLogErrorCode.Unavailable,
        `could not prepare the event log schema '${this.schema}' in PostgreSQL: ${describe(error)}. Check that the database is reachable and the user may create schemas.`,
        { cause: error },
      );
    });
    return this.opening;
  }

  /** Topics are implicit in PostgreSQL: one table holds them all. Prepares the schema. */
  async ensureTopics(_topics: readonly TopicSpec[]): Promise<void> {
    await this.open();
  }

  async append(records: readonly LogRecord[]): Promise<AppendReceipt[]> {
    if (this.closing) throw this.closedError(`append ${records.length} event(s)`);
    for (const record of records) validateRecord(record);
    if (records.length === 0) return [];
    try {
      await this.open();
    } catch (error) {
      throw new EventLogError(EventLogErrorCode.Unavailable, `${failedToAppend(records)}; ${notRecorded(records)}: ${(error as Error).message}`, {
        cause: error,
      });
    }
    // close() may have begun while the schema was being prepared; it drains what was submitted before.
    if (this.closing) throw this.closedError(`append ${records.length} event(s)`);
    const outcomes = await this.committer.submit(records);
    const rejected = outcomes.find((o): o is EventLogError => o instanceof EventLogError);
    if (rejected) throw rejected;
    return outcomes as AppendReceipt[];
  }

  async subscribe(options: SubscribeOptions): Promise<Subscription> {
    if (this.closing) throw this.closedError(`subscribe group '${options.group}'`);
    if (!options.group) throw new TypeError('a subscription needs a consumer group name');
    if (options.topics.length === 0) throw new TypeError(`subscription of group '${options.group}' names no topic`);
    await this.open();
    // close() may have begun meanwhile and would not stop a subscription it has not seen.
    if (this.closing) throw this.closedError(`subscribe group '${options.group}'`);
    const subscription = new PostgresSubscription(this.pool, this.sql, this.channel, this.schema, this.options, options, () =>
      this.subscriptions.delete(subscription),
    );
    this.subscriptions.add(subscription);
    subscription.start();
    return subscription;
  }

  async consumerLag(group: string, topics: readonly string[]): Promise<number> {
    await this.open();
    const { rows } = await this.pool.query<{ lag: string }>(
      `SELECT count(*)::text AS lag
         FROM ${this.sql.events} e
         LEFT JOIN ${this.sql.offsets} o ON o.consumer_group = $1 AND o.topic = e.topic
        WHERE e.topic = ANY($2::text[]) AND e.position > coalesce(o.position, 0)`,
      [group, [...topics]],
    );
    return Number(rows[0]?.lag ?? 0);
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      await this.committer.drain();
      await Promise.all([...this.subscriptions].map((s) => s.stop()));
      // Settle a schema creation still in flight before the pool goes away.
      await this.opening?.catch(() => undefined);
      if (this.ownsPool) await this.pool.end();
      this.pool.off('error', this.onIdleConnectionError);
    })();
    return this.closing;
  }

  private readonly onIdleConnectionError = (error: Error): void => {
    this.options.onError('an idle PostgreSQL connection of the event log failed; it will be replaced', error);
  };

  private closedError(what: string): EventLogError {
    return new EventLogError(EventLogErrorCode.Closed, `cannot ${what}: this event log was closed`);
  }

  private async createSchema(): Promise<void> {
    const schema = quotedSchema(this.schema);
    const { events, offsets } = this.sql;
    await this.transaction(async (client) => {
      // Concurrent CREATE ... IF NOT EXISTS can still collide in the catalogue; take turns.
      await client.query('SELECT pg_advisory_xact_lock($1::bigint)', [advisoryLockKey(`${this.schema}:schema`)]);
      await client.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
      await client.query(`
        CREATE TABLE IF NOT EXISTS ${events} (
          position    bigserial   PRIMARY KEY,
          topic       text        NOT NULL,
          key         text        NOT NULL,
          event_id    text        NOT NULL UNIQUE,
          event       jsonb       NOT NULL,
          appended_at timestamptz NOT NULL DEFAULT now()
        )`);
      await client.query(`CREATE INDEX IF NOT EXISTS events_topic_position ON ${events} (topic, position)`);
      // Append-only is part of the audit story: the log refuses to change or lose history. (A
      // superuser can still disable triggers; the hash chain in each event is what proves a
      // change, this only stops accidents and ordinary roles.)
      await client.query(`
        CREATE OR REPLACE FUNCTION ${schema}.refuse_history_change() RETURNS trigger LANGUAGE plpgsql AS $fn$
        BEGIN
          RAISE EXCEPTION 'the tracegate event log is append-only: % on %.% is refused', TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'Events are never changed or removed; append a new event that corrects or supersedes the old one.';
        END
        $fn$`);
      await client.query(`
        DO $do$
        BEGIN
          IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = '${events}'::regclass AND tgname = 'events_append_only') THEN
            CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON ${events}
              FOR EACH ROW EXECUTE FUNCTION ${schema}.refuse_history_change();
          END IF;
          IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = '${events}'::regclass AND tgname = 'events_no_truncate') THEN
            CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON ${events}
              FOR EACH STATEMENT EXECUTE FUNCTION ${schema}.refuse_history_change();
          END IF;
        END
        $do$`);
      await client.query(`
        CREATE TABLE IF NOT EXISTS ${offsets} (
          consumer_group text        NOT NULL,
          topic          text        NOT NULL,
          position       bigint      NOT NULL,
          updated_at     timestamptz NOT NULL DEFAULT now(),
          PRIMARY KEY (consumer_group, topic)
        )`);
      // One group of appends in one round trip: the lock, the insert, the answer for ids already
      // recorded and the notification, in the function's (implicit) transaction. Five round trips
      // to the server per append were the larger part of a strictly durable statement's wait.
      await client.query(`
        CREATE OR REPLACE FUNCTION ${schema}.append_events(batch jsonb, lock_key bigint, channel text, notify_limit int)
        RETURNS TABLE (appended_id text, appended_position text, appended_topic text, appended_key text, appended_hash text) LANGUAGE plpgsql AS $fn$
        DECLARE
          appended int;
          topics text;
        BEGIN
          -- Positions become visible in commit order only if appenders take turns (see write()).
          PERFORM pg_advisory_xact_lock(lock_key);
          RETURN QUERY
            WITH inserted AS (
              INSERT INTO ${events} AS e (topic, key, event_id, event)
              SELECT r->>'topic', r->>'key', r->>'id', r->'event'
                FROM jsonb_array_elements(batch) WITH ORDINALITY AS input(r, ord)
               ORDER BY ord
              ON CONFLICT ON CONSTRAINT events_event_id_key DO NOTHING
              RETURNING e.event_id, e.position, e.topic, e.key, e.event->>'hash' AS hash
            )
            SELECT i.event_id, i.position::text, i.topic, i.key, i.hash FROM inserted i;
          GET DIAGNOSTICS appended = ROW_COUNT;
          IF appended > 0 THEN
            SELECT string_agg(DISTINCT r->>'topic', E'\n') INTO topics FROM jsonb_array_elements(batch) AS input(r);
            PERFORM pg_notify(channel, CASE WHEN length(topics) < notify_limit THEN topics ELSE '' END);
          END IF;
          IF appended < jsonb_array_length(batch) THEN
            -- A replayed event id (a producer retrying after a lost acknowledgement) is not
            -- recorded twice: it is answered with the position it already has.
            RETURN QUERY
              SELECT s.event_id, s.position::text, s.topic, s.key, s.event->>'hash'
                FROM ${events} s
               WHERE s.event_id IN (SELECT r->>'id' FROM jsonb_array_elements(batch) AS input(r));
          END IF;
        END
        $fn$`);
    });
  }

  /** One group of concurrent appends: one transaction, in one round trip (append_events). */
  private async write(records: LogRecord[]): Promise<AppendOutcome[]> {
    // Positions come from a sequence when a row is inserted but become visible when its
    // transaction commits. Were two appending transactions to overlap, the one holding position
    // 11 could commit before the one holding 10; a consumer reading `position > last` would see
    // 11, commit its offset there, and never see 10. append_events takes an advisory lock before
    // inserting, so appending transactions take turns and positions are handed out in commit
    // order; the lock is released only after the commit is visible. Group commit keeps the cost to
    // one lock per group of appends. The notification is delivered at commit, so a woken consumer
    // finds the rows; never if the transaction aborts.
    const payload = JSON.stringify(records.map((r) => ({ topic: r.topic, key: r.key, id: r.event.id, event: r.event })));
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (error) {
      throw new EventLogError(EventLogErrorCode.Unavailable, `${failedToAppend(records)}; ${notRecorded(records)}: ${describe(error)}`, { cause: error });
    }
    client.on('error', ignoreCheckedOutClientError);
    let result: pg.QueryResult<StoredRow>;
    try {
      result = await client.query<StoredRow>(`SELECT appended_id AS event_id, appended_position AS position, appended_topic AS topic, appended_key AS key, appended_hash AS hash FROM ${quotedSchema(this.schema)}.append_events($1::jsonb, $2::bigint, $3, $4)`, [
        payload,
        advisoryLockKey(`${this.schema}:append`),
        this.channel,
        NOTIFY_PAYLOAD_LIMIT,
      ]);
      client.off('error', ignoreCheckedOutClientError);
      client.release();
    } catch (error) {
      // The connection may be broken: never hand it back to the pool.
      client.release(error instanceof Error ? error : true);
      // One statement in autocommit: an error from the server means it rolled back; a lost answer
      // leaves unknown whether it committed.
      const outcome = isServerError(error)
        ? `${notRecorded(records)}: ${describe(error)}`
        : `it is not known whether PostgreSQL recorded them: the connection was lost before it answered (${describe(error)}). Appending the same events again is safe: an event id already in the log is not recorded twice`;
      throw new EventLogError(EventLogErrorCode.Unavailable, `${failedToAppend(records)}; ${outcome}`, {
        cause: error,
      });
    }
    const stored = new Map(result.rows.map((row) => [row.event_id, row]));
    return records.map((record) => outcomeFor(record, stored.get(record.event.id)));
  }

  private async transaction(work: (client: pg.PoolClient) => Promise<void>): Promise<void> {
    const client = await this.pool.connect();
    client.on('error', ignoreCheckedOutClientError);
    try {
      await client.query('BEGIN');
      await work(client);
      await client.query('COMMIT');
      client.off('error', ignoreCheckedOutClientError);
      client.release();
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      client.release(true);
      throw error;
    }
  }
}

/**
 * A consumer group's reader. It holds the group's session advisory lock on a connection of its
 * own, so one subscriber per group reads at a time; LISTENs on the same connection; and commits
 * offsets on it too, so a subscriber that lost its connection (and with it the lock) cannot
 * commit over the one that took over.
 */
class PostgresSubscription implements Subscription {
  private stopping = false;
  private readonly abort = new AbortController();
  private running: Promise<void> | undefined;
  private woken = false;
  private wake: (() => void) | undefined;
  private readonly lockKey: string;
  private readonly batch: ReturnType<typeof batchesOf>;
  private readonly retryInitialMs: number;
  private readonly retryMaxMs: number;

  constructor(
    private readonly pool: pg.Pool,
    private readonly sql: { events: string; offsets: string },
    private readonly channel: string,
    schema: string,
    private readonly config: Required<Omit<PostgresEventLogOptions, 'schema' | 'channel'>>,
    private readonly options: SubscribeOptions,
    private readonly onStopped: () => void,
  ) {
    this.lockKey = advisoryLockKey(`${schema}:group:${options.group}`);
    this.batch = batchesOf(options);
    this.retryInitialMs = options.retry?.initialMs ?? 100;
    this.retryMaxMs = Math.max(this.retryInitialMs, options.retry?.maxMs ?? 30_000);
  }

  start(): void {
    this.running = this.run().finally(this.onStopped);
  }

  /** Lets the handler call in hand finish (and commits it), then stops. Safe to call twice. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.abort.abort();
    // Wakes an idle wait now, and keeps a query in flight from starting one afterwards.
    this.wakeUp();
    await this.running;
  }

  private async run(): Promise<void> {
    let reconnectDelay = this.retryInitialMs;
    while (!this.stopping) {
      let client: pg.PoolClient | undefined;
      let broken: unknown;
      try {
        client = await this.pool.connect();
        client.on('error', (error) => {
          broken = error;
          this.wakeUp();
        });
        client.on('notification', (message) => {
          if (message.channel !== this.channel) return;
          const topics = message.payload ? message.payload.split('\n') : [];
          if (topics.length === 0 || topics.some((t) => this.options.topics.includes(t))) this.wakeUp();
        });
        if (!(await this.acquireGroupLock(client))) break;
        await client.query(`LISTEN ${quoteIdentifier(this.channel)}`);
        reconnectDelay = this.retryInitialMs;
        await this.consume(client);
      } catch (error) {
        if (this.stopping) break;
        this.config.onError(`the subscription of group '${this.options.group}' lost its PostgreSQL connection; it reconnects`, broken ?? error);
        await this.sleep(reconnectDelay);
        reconnectDelay = Math.min(reconnectDelay * 2, this.retryMaxMs);
      } finally {
        if (client) await releaseGroupConnection(client);
      }
    }
  }

  /** Waits until no other subscriber holds the group; false if stopped meanwhile. */
  private async acquireGroupLock(client: pg.PoolClient): Promise<boolean> {
    while (!this.stopping) {
      const { rows } = await client.query<{ locked: boolean }>('SELECT pg_try_advisory_lock($1::bigint) AS locked', [this.lockKey]);
      if (rows[0]?.locked) return true;
      await this.sleep(this.config.takeoverPollMs);
    }
    return false;
  }

  private async consume(client: pg.PoolClient): Promise<void> {
    const after = await this.startingPositions(client);
    let next = this.read(client, after);
    try {
      while (!this.stopping) {
        const rows = await next;
        if (rows.length === 0) {
          if (!this.woken) await this.idle();
          next = this.read(client, after);
          continue;
        }
        // Read the rows after these while the handler works on these: the read runs on this
        // connection, the handler on its own, so the two overlap. Nothing is committed ahead:
        // positions are committed below only as handlers finish.
        const ahead = new Map(after);
        for (const row of rows) ahead.set(row.topic, row.position);
        next = this.read(client, ahead);
        for (let from = 0; from < rows.length; from += this.batch.maxEvents) {
          if (this.stopping) return;
          const deliveries: DeliveredEvent[] = rows
            .slice(from, from + this.batch.maxEvents)
            .map((row) => ({ topic: row.topic, key: row.key, event: row.event, position: row.position }));
          if (!(await this.handle(deliveries))) return;
          // Committed only after the handler resolved: a crash before this line redelivers the events.
          const last = new Map(deliveries.map((d) => [d.topic, d.position]));
          await client.query(
            `INSERT INTO ${this.sql.offsets} (consumer_group, topic, position)
             SELECT $1, t, p FROM unnest($2::text[], $3::bigint[]) AS o(t, p)
             ON CONFLICT (consumer_group, topic) DO UPDATE SET position = EXCLUDED.position, updated_at = now()`,
            [this.options.group, [...last.keys()], [...last.values()]],
          );
          for (const [topic, position] of last) after.set(topic, position);
        }
      }
    } finally {
      // A read still in flight when we stop or fail: its rows are not handled, its error not ours.
      next.catch(() => undefined);
    }
  }

  /** The next rows of the subscribed topics after `after`, in position order. */
  private read(client: pg.PoolClient, after: ReadonlyMap<string, string>): Promise<{ position: string; topic: string; key: string; event: DeliveredEvent['event'] }[]> {
    // A notification from here on means there may be rows this read does not see.
    this.woken = false;
    const topics = [...after.keys()];
    return client
      .query<{ position: string; topic: string; key: string; event: DeliveredEvent['event'] }>(
        `SELECT e.position::text AS position, e.topic, e.key, e.event
           FROM unnest($1::text[], $2::bigint[]) AS o(topic, after)
          CROSS JOIN LATERAL (
                SELECT position, topic, key, event FROM ${this.sql.events} ev
                 WHERE ev.topic = o.topic AND ev.position > o.after
                 ORDER BY ev.position LIMIT $3) e
          ORDER BY e.position
          LIMIT $3`,
        [topics, topics.map((t) => after.get(t)!), Math.max(this.config.batchSize, this.batch.maxEvents)],
      )
      .then((result) => result.rows);
  }

  /** The group's committed position per topic; a new group starts at the beginning or at the end. */
  private async startingPositions(client: pg.PoolClient): Promise<Map<string, string>> {
    const topics = [...new Set(this.options.topics)];
    const { rows } = await client.query<{ topic: string; position: string }>(
      `SELECT topic, position::text AS position FROM ${this.sql.offsets} WHERE consumer_group = $1 AND topic = ANY($2::text[])`,
      [this.options.group, topics],
    );
    const after = new Map(rows.map((r) => [r.topic, r.position]));
    for (const topic of topics) {
      if (after.has(topic)) continue;
      if (this.options.fromBeginning ?? true) {
        after.set(topic, '0');
        continue;
      }
      // Remember where "the end" was, so a restart before the first event does not move it.
      const { rows: end } = await client.query<{ position: string }>(
        `INSERT INTO ${this.sql.offsets} (consumer_group, topic, position)
         SELECT $1, $2, coalesce(max(position), 0) FROM ${this.sql.events} WHERE topic = $2
         ON CONFLICT (consumer_group, topic) DO UPDATE SET updated_at = now()
         RETURNING position::text AS position`,
        [this.options.group, topic],
      );
      after.set(topic, end[0]!.position);
    }
    return after;
  }

  /**
   * Calls the handler until it resolves, backing off between failures. False if stop() came
   * while the event was failing: it stays uncommitted and is delivered again on the next start.
   */
  private async handle(deliveries: readonly DeliveredEvent[]): Promise<boolean> {
    let delay = this.retryInitialMs;
    for (let attempt = 1; ; attempt += 1) {
      try {
        await this.batch.handle(deliveries);
        return true;
      } catch (error) {
        const first = deliveries[0]!;
        const what = deliveries.length === 1 ? 'it' : `the ${deliveries.length} events from there`;
        this.config.onError(
          `handler of group '${this.options.group}' failed on event ${first.event.id} (${first.topic} position ${first.position}, attempt ${attempt}); ${what} will be delivered again in ${delay} ms`,
          error,
        );
      }
      if (this.stopping) return false;
      await this.sleep(delay);
      if (this.stopping) return false;
      delay = Math.min(delay * 2, this.retryMaxMs);
    }
  }

  private wakeUp(): void {
    this.woken = true;
    this.wake?.();
  }

  /** Until a notification for our topics, the fallback poll, or stop(). */
  private idle(): Promise<void> {
    return new Promise<void>((resolve) => {
      if (this.abort.signal.aborted) return resolve();
      const signal = this.abort.signal;
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        this.wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, this.config.pollIntervalMs);
      signal.addEventListener('abort', done, { once: true });
      this.wake = done;
    });
  }

  private sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      if (this.abort.signal.aborted) return resolve();
      const timer = setTimeout(done, ms);
      const signal = this.abort.signal;
      signal.addEventListener('abort', done, { once: true });
      function done() {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        resolve();
      }
    });
  }
}

async function releaseGroupConnection(client: pg.PoolClient): Promise<void> {
  try {
    // Unlock explicitly so a waiting subscriber can take over at its next try; closing the
    // connection below releases the lock too, but only once the server has noticed.
    await client.query('SELECT pg_advisory_unlock_all()');
  } catch {
    // The connection is gone, and the session's locks with it.
  }
  // Never return a LISTENing connection to the pool.
  client.release(true);
}

function ignoreCheckedOutClientError(): void {
  // The query in flight on this connection rejects with the same error, and is handled there.
}

function validateRecord(record: LogRecord): void {
  const id = record.event?.id ?? '(no id)';
  const invalid = (why: string) => new EventLogError(EventLogErrorCode.InvalidRecord, `event ${id} cannot be appended: ${why}`);
  if (typeof record.topic !== 'string' || record.topic === '') throw invalid('it names no topic');
  if (typeof record.key !== 'string' || record.key === '') throw invalid(`it has no key; events of topic ${record.topic} are keyed by aggregate`);
  const problems = cloudEventProblems(record.event);
  if (problems.length > 0) throw invalid(`it is not a valid CloudEvent: ${problems.join('; ')}`);
  // jsonb cannot hold the NUL character: refuse the one event rather than fail its whole group.
  if (JSON.stringify(record).includes('\\u0000')) throw invalid('it contains the NUL character (\\u0000), which PostgreSQL jsonb cannot store');
}

function outcomeFor(record: LogRecord, row: StoredRow | undefined): AppendOutcome {
  if (!row) {
    return new EventLogError(EventLogErrorCode.Unavailable, `the event log in PostgreSQL did not report a position for event ${record.event.id}; it may not have been recorded`);
  }
  if (row.topic !== record.topic || row.key !== record.key || row.hash !== record.event.hash) {
    return new EventLogError(
      EventLogErrorCode.InvalidRecord,
      `event id ${record.event.id} is already in the log at position ${row.position} (topic ${row.topic}, key ${row.key}) with different content; an event id names exactly one event, so this event was not recorded`,
    );
  }
  return { topic: row.topic, key: row.key, eventId: row.event_id, position: row.position };
}

function describeRecords(records: readonly LogRecord[]): string {
  const first = records[0]!;
  return records.length === 1
    ? `event ${first.event.id} (${first.event.type}) to ${first.topic}`
    : `${records.length} events (the first ${first.event.id}, ${first.event.type}, to ${first.topic})`;
}

function failedToAppend(records: readonly LogRecord[]): string {
  return `the event log in PostgreSQL failed to append ${describeRecords(records)}`;
}

function notRecorded(records: readonly LogRecord[]): string {
  return records.length === 1 ? 'the event was not recorded' : 'the events were not recorded';
}

function describe(error: unknown): string {
  if (error instanceof AggregateError && error.errors.length > 0) return error.errors.map(describe).join('; ');
  if (error instanceof Error) return error.message || error.name;
  return String(error);
}

function quoteIdentifier(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** An ErrorResponse from the server for the statement itself (it rolled back), not a lost connection. */
function isServerError(error: unknown): boolean {
  const code = (error as { code?: string }).code;
  return error instanceof Error && 'severity' in error && typeof code === 'string' && !/^(08|57P)/.test(code);
}
