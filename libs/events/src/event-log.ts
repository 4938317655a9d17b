import type { CloudEvent } from './cloud-event.js';
import type { TopicSpec } from './topic-catalogue.js';

/** One record to append: the key orders it (one key, one ordered stream). */
export interface LogRecord {
  readonly topic: string;
  readonly key: string;
  readonly event: CloudEvent;
}

/** The log's acknowledgement: the record is durable (Kafka acks=all / committed transaction). */
export interface AppendReceipt {
  readonly topic: string;
  readonly key: string;
  readonly eventId: string;
  /** Adapter-specific position: `partition:offset` on Kafka, the row position on PostgreSQL. */
  readonly position: string;
}

export interface DeliveredEvent {
  readonly topic: string;
  readonly key: string;
  readonly event: CloudEvent;
  readonly position: string;
}

/**
 * Handles one event. Resolving means "done": only then is the position committed for the group.
 * Throwing means "not done": the same event is delivered again (after a back-off) and nothing
 * after it on the same key is delivered first. Handlers must therefore be idempotent by event id.
 */
export type EventHandler = (delivery: DeliveredEvent) => Promise<void>;

/**
 * Handles consecutive events at once (a projection applies them in one transaction). Resolving
 * means every one is done and their positions are committed; throwing means none is, and the
 * same events come again. Within one batch, events of one key keep their log order.
 */
export type BatchEventHandler = (deliveries: readonly DeliveredEvent[]) => Promise<void>;

interface SubscribeCommon {
  /** Consumer group: its committed positions survive restarts of the consumer. */
  readonly group: string;
  readonly topics: readonly string[];
  /** Where a group with no committed position starts. Default: the beginning. */
  readonly fromBeginning?: boolean;
  /** Back-off between redeliveries of a failing event. */
  readonly retry?: { readonly initialMs?: number; readonly maxMs?: number };
}

/** One event at a time (`handler`), or batches of consecutive events (`batchHandler`). */
export type SubscribeOptions =
  | (SubscribeCommon & { readonly handler: EventHandler; readonly batchHandler?: undefined })
  | (SubscribeCommon & {
      readonly batchHandler: BatchEventHandler;
      readonly handler?: undefined;
      /** The most events one batch carries. Default 1000. */
      readonly maxBatchEvents?: number;
      /**
       * Batches of different partitions handled at once, where the log has partitions (Kafka).
       * Each key stays in one partition, so a key's events are still handled one batch at a time,
       * in order. Default: the adapter's setting (1).
       */
      readonly partitionsConcurrently?: number;
    });

/** The subscription as adapters run it: always in batches, of one event for a per-event handler. */
export function batchesOf(options: SubscribeOptions): { readonly handle: BatchEventHandler; readonly maxEvents: number } {
  if (options.batchHandler) return { handle: options.batchHandler, maxEvents: Math.max(1, options.maxBatchEvents ?? 1000) };
  const handler = options.handler;
  return { handle: async (deliveries) => { for (const delivery of deliveries) await handler(delivery); }, maxEvents: 1 };
}

export interface Subscription {
  /** Finishes the event in hand, commits it, and stops. */
  stop(): Promise<void>;
}

/**
 * The event log port. Two adapters implement it: Kafka (distributed deployments) and PostgreSQL
 * (the embedded all-in-one default). One contract suite runs against both.
 */
export interface EventLog {
  readonly kind: 'kafka' | 'postgres';
  /** Creates missing topics (Kafka) or is a no-op where topics are implicit (PostgreSQL). */
  ensureTopics(topics: readonly TopicSpec[]): Promise<void>;
  /**
   * Appends records and resolves once the log has durably acknowledged every one of them.
   * Concurrent calls share one write (group commit). Rejects with an {@link EventLogError}
   * when the log cannot acknowledge: the caller must then not act as if the event happened.
   */
  append(records: readonly LogRecord[]): Promise<AppendReceipt[]>;
  subscribe(options: SubscribeOptions): Promise<Subscription>;
  /**
   * How many events of `topics` the group has not committed yet (the consumer lag), summed over
   * partitions. A group with no committed position counts the whole topic.
   */
  consumerLag(group: string, topics: readonly string[]): Promise<number>;
  /** Flushes pending appends, stops subscriptions and disconnects. */
  close(): Promise<void>;
}

export enum EventLogErrorCode {
  /** The log did not acknowledge in time or is unreachable. */
  Unavailable = 'EVENT_LOG_UNAVAILABLE',
  /** append() after close(). */
  Closed = 'EVENT_LOG_CLOSED',
  /** A record the log cannot take (no key, unknown topic, too large). */
  InvalidRecord = 'EVENT_LOG_INVALID_RECORD',
}

export class EventLogError extends Error {
  override readonly name = 'EventLogError';
  constructor(
    readonly code: EventLogErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
