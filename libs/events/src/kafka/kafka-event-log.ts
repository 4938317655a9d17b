import kafkajs, { type Admin, type Consumer, type EachBatchPayload, type KafkaMessage, type LogEntry, type PartitionMetadata, type Producer } from 'kafkajs';
import type { CloudEvent } from '../cloud-event.js';
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

// kafkajs is CommonJS; its named exports are not all visible to ESM, so take them from the default.
const { Kafka, Partitioners, logLevel } = kafkajs;
type Kafka = InstanceType<typeof Kafka>;
type LogLevel = (typeof logLevel)[keyof typeof logLevel];

/** Structured-mode CloudEvents over Kafka: the record value is the whole envelope as JSON. */
export const CLOUDEVENTS_CONTENT_TYPE = 'application/cloudevents+json';

export type KafkaLogLevel = 'nothing' | 'error' | 'warn' | 'info' | 'debug';

export interface KafkaLogLine {
  readonly level: Exclude<KafkaLogLevel, 'nothing'>;
  /** `kafkajs:<namespace>` for the client's own lines, `tracegate:<what>` for the adapter's. */
  readonly source: string;
  readonly message: string;
  readonly extra: Readonly<Record<string, unknown>>;
}

export interface KafkaEventLogOptions {
  /** Bootstrap servers: `host:port`, one or several (a comma-separated string is accepted). */
  readonly brokers: string | readonly string[];
  readonly clientId?: string;
  /**
   * The longest one write waits for the log's acknowledgement (including connecting), and the
   * longest an append waits to look up its topic, before it rejects with
   * {@link EventLogErrorCode.Unavailable}. An append queued behind a write that is failing waits for
   * that write first, so in the worst case an append is refused after about twice this (three times
   * for the first append to a topic, which looks the topic up). A refused connection fails much
   * sooner (bounded retries). Default 5000 ms.
   */
  readonly ackTimeoutMs?: number;
  /** Per-request timeout, also the broker-side wait for acks=all. Default 2000 ms. */
  readonly requestTimeoutMs?: number;
  /** TCP connect timeout. Default 1000 ms. */
  readonly connectionTimeoutMs?: number;
  /** Producer retries of one write before it gives up (bounded: strict durability). Default 2. */
  readonly producerRetries?: number;
  /** Records larger than this (the value's bytes) are refused with InvalidRecord. Default 1,000,000. */
  readonly maxRecordBytes?: number;
  /** The most records one produce request carries. Default 5000. */
  readonly maxRecordsPerWrite?: number;
  /** How long ensureTopics waits for created topics to have leaders. Default 30000 ms. */
  readonly topicReadyTimeoutMs?: number;
  /** Replication factor of topics created by ensureTopics. Default: min(3, brokers in the cluster). */
  readonly replicationFactor?: number;
  readonly consumer?: {
    /** Default 30000 ms. */
    readonly sessionTimeoutMs?: number;
    /** Default 1000 ms (so a joining consumer rebalances the group quickly). */
    readonly heartbeatIntervalMs?: number;
    /** Longest a fetch waits at the broker for new records. Default 1000 ms (bounds stop()). */
    readonly maxWaitTimeMs?: number;
    /** Commit handled positions at least every N events... Default 100. */
    readonly commitEveryEvents?: number;
    /** ...and at least this often. Default 1000 ms. Positions are also committed at every batch end and at stop(). */
    readonly commitIntervalMs?: number;
    /** Partitions handled concurrently by one subscription. Default 1 (one handler call at a time). */
    readonly partitionsConsumedConcurrently?: number;
  };
  /** What is logged; default 'error'. */
  readonly logLevel?: KafkaLogLevel;
  /** Where log lines go; default stderr, one line each. */
  readonly log?: (line: KafkaLogLine) => void;
}

interface PreparedRecord {
  readonly topic: string;
  readonly key: string;
  readonly partition: number;
  readonly value: string;
  readonly eventId: string;
}

/** The reason a grouped write failed; each caller gets its own {@link EventLogError} from it. */
class WriteFailed extends Error {
  override readonly name = 'WriteFailed';
}

const LEVELS: Record<KafkaLogLevel, number> = { nothing: 0, error: 1, warn: 2, info: 3, debug: 4 };
const KAFKAJS_LEVELS: Record<KafkaLogLevel, LogLevel> = {
  nothing: logLevel.NOTHING,
  error: logLevel.ERROR,
  warn: logLevel.WARN,
  info: logLevel.INFO,
  debug: logLevel.DEBUG,
};

/**
 * The event log on Apache Kafka (kafkajs), for distributed deployments.
 *
 * Appends: an idempotent producer (acks=all, one request in flight per broker). Concurrent appends
 * are grouped by a {@link GroupCommitter} into one `sendBatch`, i.e. one produce request across
 * topics; each caller resolves when its own records are acknowledged. Each record's partition is
 * computed here with kafkajs's default (Java-compatible murmur2) partitioner, so a receipt names
 * its exact `partition:offset`. Retries and timeouts are bounded: when the broker cannot
 * acknowledge, the append rejects with {@link EventLogErrorCode.Unavailable} within
 * `ackTimeoutMs` (strict durability: the command must then not run). After any failed write the
 * producer is replaced, so a new producer id and fresh sequence numbers are used once the broker
 * is back (kafkajs's idempotent producer can otherwise stay stuck on out-of-order sequences).
 *
 * Subscriptions: a consumer group per subscription. A position is committed only after its handler
 * succeeded; a failing handler is retried in place with back-off (heartbeating meanwhile), so the
 * same event is delivered again and nothing after it on that partition overtakes it.
 */
export class KafkaEventLog implements EventLog {
  readonly kind = 'kafka' as const;
  /** `host:port,host:port` as given. */
  readonly brokers: string;

  private readonly kafka: Kafka;
  private readonly committer: GroupCommitter<PreparedRecord, AppendReceipt>;
  private readonly partitioner = Partitioners.DefaultPartitioner();
  private readonly partitionCache = new Map<string, Promise<PartitionMetadata[]>>();
  private readonly subscriptions = new Set<KafkaSubscription>();
  private readonly pendingAppends = new Set<Promise<unknown>>();
  private readonly retiredProducers = new Set<Promise<void>>();
  private producer: Promise<Producer> | undefined;
  private admin: Promise<Admin> | undefined;
  private closing: Promise<void> | undefined;

  private readonly ackTimeoutMs: number;
  private readonly requestTimeoutMs: number;
  private readonly producerRetries: number;
  private readonly maxRecordBytes: number;
  private readonly level: number;
  private readonly sink: (line: KafkaLogLine) => void;

  constructor(private readonly options: KafkaEventLogOptions) {
    const brokerList = typeof options.brokers === 'string' ? options.brokers.split(',') : [...options.brokers];
    const brokers = brokerList.map((b) => b.trim()).filter(Boolean);
    if (brokers.length === 0) throw new TypeError('KafkaEventLog needs at least one broker (host:port)');
    this.brokers = brokers.join(',');
    this.ackTimeoutMs = options.ackTimeoutMs ?? 5000;
    this.requestTimeoutMs = options.requestTimeoutMs ?? 2000;
    this.producerRetries = options.producerRetries ?? 2;
    this.maxRecordBytes = options.maxRecordBytes ?? 1_000_000;
    this.level = LEVELS[options.logLevel ?? 'error'];
    this.sink = options.log ?? writeToStderr;

    this.kafka = new Kafka({
      clientId: options.clientId ?? 'tracegate',
      brokers,
      connectionTimeout: options.connectionTimeoutMs ?? 1000,
      requestTimeout: this.requestTimeoutMs,
      enforceRequestTimeout: true,
      retry: { retries: this.producerRetries, initialRetryTime: 100, maxRetryTime: 1000 },
      logLevel: KAFKAJS_LEVELS[options.logLevel ?? 'error'],
      logCreator: () => (entry: LogEntry) => this.fromKafkajs(entry),
    });
    this.committer = new GroupCommitter((items) => this.write(items), options.maxRecordsPerWrite ?? 5000);
  }

  /** How many produce requests appends have taken: fewer than appends when grouping works. */
  get writeCount(): number {
    return this.committer.writeCount;
  }

  async ensureTopics(topics: readonly TopicSpec[]): Promise<void> {
    this.assertOpen();
    if (topics.length === 0) return;
    try {
      const admin = await this.getAdmin();
      const existing = new Set(await admin.listTopics());
      const missing = topics.filter((t) => !existing.has(t.name));
      if (missing.length > 0) {
        const replicationFactor =
          this.options.replicationFactor ?? Math.min(3, (await admin.describeCluster()).brokers.length);
        // Not kafkajs's waitForLeaders: it gives up when the broker does not know a topic yet,
        // which happens on KRaft between the controller creating it and the broker's metadata
        // catching up. waitForTopics() below tolerates that.
        await admin.createTopics({
          waitForLeaders: false,
          topics: missing.map((t) => ({
            topic: t.name,
            numPartitions: t.partitions,
            replicationFactor,
            configEntries: [
              { name: 'retention.ms', value: String(t.retentionMs) },
              // Audit topics are never compacted: every event is kept, not the latest per key.
              { name: 'cleanup.policy', value: 'delete' },
            ],
          })),
        });
      }
      await this.waitForTopics(admin, topics);
      for (const t of topics) this.partitionCache.delete(t.name);
    } catch (error) {
      throw new EventLogError(
        EventLogErrorCode.Unavailable,
        `the event log (Kafka at ${this.brokers}) could not ensure topics ${topics.map((t) => t.name).join(', ')}: ${describe(error)}`,
        { cause: error },
      );
    }
  }

  /** Until the broker serves every topic with all its partitions led. */
  private async waitForTopics(admin: Admin, topics: readonly TopicSpec[]): Promise<void> {
    const timeoutMs = this.options.topicReadyTimeoutMs ?? 30_000;
    const deadline = Date.now() + timeoutMs;
    let lastProblem = '';
    for (;;) {
      try {
        const metadata = await admin.fetchTopicMetadata({ topics: topics.map((t) => t.name) });
        const notReady = topics.filter((t) => {
          const found = metadata.topics.find((m) => m.name === t.name);
          return !found || found.partitions.length === 0 || found.partitions.some((p) => p.leader < 0);
        });
        if (notReady.length === 0) return;
        lastProblem = `no leader yet for ${notReady.map((t) => t.name).join(', ')}`;
      } catch (error) {
        if (!hasKafkaErrorType(error, 'UNKNOWN_TOPIC_OR_PARTITION') && !hasKafkaErrorType(error, 'LEADER_NOT_AVAILABLE')) throw error;
        lastProblem = describe(error);
      }
      if (Date.now() >= deadline) throw new Error(`the topics were not ready within ${timeoutMs} ms: ${lastProblem}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  async append(records: readonly LogRecord[]): Promise<AppendReceipt[]> {
    this.assertOpen();
    if (records.length === 0) return [];
    const pending = this.appendNow(records);
    this.pendingAppends.add(pending);
    try {
      return await pending;
    } finally {
      this.pendingAppends.delete(pending);
    }
  }

  private async appendNow(records: readonly LogRecord[]): Promise<AppendReceipt[]> {
    const startedAt = Date.now();
    let prepared: PreparedRecord[];
    try {
      prepared = await withDeadline(this.prepare(records), this.ackTimeoutMs, 'looking up the topic');
    } catch (error) {
      if (error instanceof EventLogError) throw error;
      throw this.unavailable(records, error, Date.now() - startedAt);
    }
    try {
      return await this.committer.submit(prepared);
    } catch (error) {
      if (error instanceof EventLogError) throw error;
      throw this.unavailable(records, error, Date.now() - startedAt);
    }
  }

  private unavailable(records: readonly LogRecord[], error: unknown, elapsedMs: number): EventLogError {
    const first = records[0]!.event.id;
    const more = records.length > 1 ? ` (and ${records.length - 1} more of the same append)` : '';
    return new EventLogError(
      EventLogErrorCode.Unavailable,
      `the event log (Kafka at ${this.brokers}) did not acknowledge event ${first}${more} after ${elapsedMs} ms ` +
        `(${describe(error)}): it was not recorded and the command must not run`,
      { cause: error },
    );
  }

  /** Validates each record and fixes its partition, before it may join a grouped write. */
  private async prepare(records: readonly LogRecord[]): Promise<PreparedRecord[]> {
    const prepared: PreparedRecord[] = [];
    for (const record of records) {
      const id = record.event?.id;
      if (!record.topic) throw invalid(`event ${id} has no topic`);
      if (typeof record.key !== 'string' || record.key === '') throw invalid(`event ${id} for ${record.topic} has no key`);
      let value: string;
      try {
        value = JSON.stringify(record.event);
      } catch (error) {
        throw invalid(`event ${id} for ${record.topic} cannot be serialised as JSON: ${describe(error)}`);
      }
      const size = Buffer.byteLength(value) + Buffer.byteLength(record.key);
      if (size > this.maxRecordBytes) {
        throw invalid(`event ${id} for ${record.topic} is ${size} bytes, more than the ${this.maxRecordBytes} a record may have`);
      }
      const partitionMetadata = await this.partitionsOf(record.topic, id);
      const partition = this.partitioner({ topic: record.topic, partitionMetadata, message: { key: record.key, value: null } });
      prepared.push({ topic: record.topic, key: record.key, partition, value, eventId: id });
    }
    return prepared;
  }

  /** The topic's partitions, looked up once (concurrent appends share the lookup) and cached. */
  private partitionsOf(topic: string, eventId: string): Promise<PartitionMetadata[]> {
    let lookup = this.partitionCache.get(topic);
    if (!lookup) {
      lookup = this.fetchPartitions(topic);
      this.partitionCache.set(topic, lookup);
      lookup.catch(() => {
        if (this.partitionCache.get(topic) === lookup) this.partitionCache.delete(topic);
      });
    }
    const current = lookup;
    return current.then((partitions) => {
      if (partitions.length === 0) {
        // Not cached: the topic may be created a moment later.
        if (this.partitionCache.get(topic) === current) this.partitionCache.delete(topic);
        throw invalid(`event ${eventId} is for topic ${topic}, which does not exist at ${this.brokers}: create it with ensureTopics()`);
      }
      return partitions;
    });
  }

  private async fetchPartitions(topic: string): Promise<PartitionMetadata[]> {
    const admin = await this.getAdmin();
    try {
      const metadata = await admin.fetchTopicMetadata({ topics: [topic] });
      const partitions = metadata.topics.find((t) => t.name === topic)?.partitions ?? [];
      return [...partitions].sort((a, b) => a.partitionId - b.partitionId);
    } catch (error) {
      if (hasKafkaErrorType(error, 'UNKNOWN_TOPIC_OR_PARTITION')) return [];
      throw error;
    }
  }

  /** One grouped write: one `sendBatch`, i.e. one produce request per broker across all topics. */
  private async write(items: PreparedRecord[]): Promise<AppendReceipt[]> {
    try {
      return await withDeadline(this.send(items), this.ackTimeoutMs, 'waiting for the acknowledgement');
    } catch (error) {
      // Whatever state the idempotent producer is in now (sequence numbers of a request that may or
      // may not have been written), the next write starts from a new producer id.
      this.retireProducer();
      throw new WriteFailed(describe(error), { cause: error });
    }
  }

  private async send(items: PreparedRecord[]): Promise<AppendReceipt[]> {
    const producer = await this.getProducer();
    const byTopic = new Map<string, { key: string; value: string; partition: number; headers: Record<string, string> }[]>();
    for (const item of items) {
      let messages = byTopic.get(item.topic);
      if (!messages) byTopic.set(item.topic, (messages = []));
      messages.push({ key: item.key, value: item.value, partition: item.partition, headers: { 'content-type': CLOUDEVENTS_CONTENT_TYPE } });
    }
    const metadata = await producer.sendBatch({
      acks: -1,
      timeout: this.requestTimeoutMs,
      topicMessages: [...byTopic].map(([topic, messages]) => ({ topic, messages })),
    });
    // Within one topic-partition the records keep their order, so the n-th record of a partition
    // in this write is at the batch's base offset + n.
    const baseOffsets = new Map<string, bigint>();
    for (const m of metadata) {
      if (m.errorCode !== 0 || m.baseOffset === undefined) {
        throw new Error(`Kafka answered ${m.topicName}[${m.partition}] with error code ${m.errorCode}`);
      }
      baseOffsets.set(`${m.topicName}\u0000${m.partition}`, BigInt(m.baseOffset));
    }
    const next = new Map<string, bigint>();
    return items.map((item) => {
      const tp = `${item.topic}\u0000${item.partition}`;
      const base = baseOffsets.get(tp);
      if (base === undefined) throw new Error(`Kafka's acknowledgement names no offset for ${item.topic}[${item.partition}]`);
      const index = next.get(tp) ?? 0n;
      next.set(tp, index + 1n);
      return { topic: item.topic, key: item.key, eventId: item.eventId, position: `${item.partition}:${base + index}` };
    });
  }

  private getProducer(): Promise<Producer> {
    if (!this.producer) {
      const producer = this.kafka.producer({
        idempotent: true,
        maxInFlightRequests: 1,
        allowAutoTopicCreation: false,
        createPartitioner: Partitioners.DefaultPartitioner,
        retry: { retries: this.producerRetries, initialRetryTime: 100, maxRetryTime: 1000 },
      });
      const connecting = producer.connect().then(() => producer);
      this.producer = connecting;
      connecting.catch(() => {
        if (this.producer === connecting) this.retireProducer();
      });
    }
    return this.producer;
  }

  private retireProducer(): void {
    const old = this.producer;
    this.producer = undefined;
    if (!old) return;
    const done = old
      .then((p) => withDeadline(p.disconnect(), 5000, 'disconnecting a failed producer'))
      .catch(() => undefined)
      .finally(() => this.retiredProducers.delete(done));
    this.retiredProducers.add(done);
  }

  private getAdmin(): Promise<Admin> {
    if (!this.admin) {
      const admin = this.kafka.admin();
      const connecting = admin.connect().then(() => admin);
      this.admin = connecting;
      connecting.catch(() => {
        if (this.admin === connecting) this.admin = undefined;
      });
    }
    return this.admin;
  }

  async subscribe(options: SubscribeOptions): Promise<Subscription> {
    this.assertOpen();
    const c = this.options.consumer ?? {};
    const consumer = this.kafka.consumer({
      groupId: options.group,
      sessionTimeout: c.sessionTimeoutMs ?? 30_000,
      heartbeatInterval: c.heartbeatIntervalMs ?? 1000,
      maxWaitTimeInMs: c.maxWaitTimeMs ?? 1000,
      allowAutoTopicCreation: false,
      // A consumer outlives broker outages: it keeps reconnecting until stopped.
      retry: {
        retries: 10,
        initialRetryTime: 300,
        maxRetryTime: 5000,
        restartOnFailure: async () => !subscription.stopping,
      },
    });
    const subscription = new KafkaSubscription(consumer, options, (line) => this.emit(line), () => this.subscriptions.delete(subscription));
    this.subscriptions.add(subscription);
    try {
      await consumer.connect();
      await consumer.subscribe({ topics: [...options.topics], fromBeginning: options.fromBeginning ?? true });
      await consumer.run({
        eachBatchAutoResolve: false,
        autoCommit: true,
        autoCommitThreshold: c.commitEveryEvents ?? 100,
        autoCommitInterval: c.commitIntervalMs ?? 1000,
        partitionsConsumedConcurrently: (options.batchHandler ? options.partitionsConcurrently : undefined) ?? c.partitionsConsumedConcurrently ?? 1,
        eachBatch: (payload) => subscription.eachBatch(payload),
      });
    } catch (error) {
      await subscription.stop().catch(() => undefined);
      throw new EventLogError(
        EventLogErrorCode.Unavailable,
        `the event log (Kafka at ${this.brokers}) could not subscribe group ${options.group} to ${options.topics.join(', ')}: ${describe(error)}`,
        { cause: error },
      );
    }
    return subscription;
  }

  async consumerLag(group: string, topics: readonly string[]): Promise<number> {
    this.assertOpen();
    const admin = await this.getAdmin();
    let lag = 0;
    const committed = await admin.fetchOffsets({ groupId: group, topics: [...topics] });
    for (const topic of topics) {
      const ends = await admin.fetchTopicOffsets(topic);
      const positions = new Map((committed.find((c) => c.topic === topic)?.partitions ?? []).map((p) => [p.partition, Number(p.offset)]));
      for (const end of ends) {
        // A partition the group never committed on reads -1: everything from the low watermark is lag.
        const at = positions.get(end.partition) ?? -1;
        const from = at >= 0 ? at : Number(end.low);
        lag += Math.max(0, Number(end.high) - from);
      }
    }
    return lag;
  }

  close(): Promise<void> {
    this.closing ??= this.closeNow();
    return this.closing;
  }

  private async closeNow(): Promise<void> {
    await Promise.allSettled([...this.pendingAppends]);
    await this.committer.drain();
    await Promise.allSettled([...this.subscriptions].map((s) => s.stop()));
    const producer = this.producer;
    const admin = this.admin;
    this.producer = undefined;
    this.admin = undefined;
    await Promise.allSettled([
      producer?.then((p) => p.disconnect()),
      admin?.then((a) => a.disconnect()),
      ...this.retiredProducers,
    ]);
  }

  private assertOpen(): void {
    if (this.closing) throw new EventLogError(EventLogErrorCode.Closed, `the event log (Kafka at ${this.brokers}) is closed`);
  }

  /**
   * The quiet log creator. kafkajs logs every failed attempt at ERROR level, even those it retries
   * (a refused connection, a coordinator still loading, a consumer restarting): those become WARN.
   * What really failed reaches the caller as an {@link EventLogError}, or is logged at ERROR by the
   * subscription when a consumer stops for good.
   */
  private fromKafkajs(entry: LogEntry): void {
    const { message, timestamp: _timestamp, ...extra } = entry.log;
    let level: KafkaLogLine['level'] =
      entry.level === logLevel.ERROR ? 'error' : entry.level === logLevel.WARN ? 'warn' : entry.level === logLevel.INFO ? 'info' : 'debug';
    if (level === 'error' && isRoutineKafkajsError(entry.namespace, String(message))) level = 'warn';
    this.emit({ level, source: `kafkajs:${entry.namespace}`, message: String(message), extra });
  }

  private emit(line: KafkaLogLine): void {
    if (LEVELS[line.level] <= this.level) this.sink(line);
  }
}

class KafkaSubscription implements Subscription {
  stopping = false;
  private stopped: Promise<void> | undefined;
  private readonly wake = new AbortController();

  constructor(
    private readonly consumer: Consumer,
    private readonly options: SubscribeOptions,
    private readonly log: (line: KafkaLogLine) => void,
    private readonly onStopped: () => void,
  ) {
    consumer.on(consumer.events.CRASH, (event) => {
      if (this.stopping) return;
      const { error, restart } = event.payload as { error: Error; restart: boolean };
      this.log({
        level: restart ? 'warn' : 'error',
        source: 'tracegate:kafka-subscription',
        message: restart
          ? `consumer of group ${options.group} crashed and restarts: ${describe(error)}`
          : `consumer of group ${options.group} crashed and stopped for good: ${describe(error)}`,
        extra: { group: options.group, topics: options.topics },
      });
    });
  }

  async eachBatch({ batch, resolveOffset, heartbeat, commitOffsetsIfNecessary, isRunning, isStale }: EachBatchPayload): Promise<void> {
    const initialMs = this.options.retry?.initialMs ?? 100;
    const maxMs = this.options.retry?.maxMs ?? 10_000;
    const carryOn = () => !this.stopping && isRunning() && !isStale();
    const { handle, maxEvents } = batchesOf(this.options);
    for (let from = 0; from < batch.messages.length; from += maxEvents) {
      if (!carryOn()) return;
      const messages = batch.messages.slice(from, from + maxEvents);
      const last = messages.at(-1)!;
      for (let attempt = 1; ; attempt += 1) {
        try {
          await handle(messages.map((message) => toDelivery(batch.topic, batch.partition, message)));
          break;
        } catch (error) {
          const first = messages[0]!;
          this.log({
            level: 'warn',
            source: 'tracegate:kafka-subscription',
            message: `handler of group ${this.options.group} failed on ${batch.topic}[${batch.partition}]@${first.offset}${messages.length > 1 ? `..${last.offset}` : ''} (attempt ${attempt}); it is delivered again: ${describe(error)}`,
            extra: { group: this.options.group },
          });
          // Not resolved: on stop or rebalance the events stay uncommitted and are delivered again.
          if (!carryOn()) return;
          const delay = Math.min(maxMs, initialMs * 2 ** Math.min(attempt - 1, 30));
          await this.backOff(delay, heartbeat);
          if (!carryOn()) return;
        }
      }
      resolveOffset(last.offset);
      await commitOffsetsIfNecessary();
      await heartbeat();
    }
  }

  /** Sleeps, heartbeating so the group keeps the partition here; wakes early on stop(). */
  private async backOff(ms: number, heartbeat: () => Promise<void>): Promise<void> {
    const until = Date.now() + ms;
    while (!this.stopping) {
      const left = until - Date.now();
      if (left <= 0) return;
      await sleep(Math.min(left, 500), this.wake.signal);
      await heartbeat();
    }
  }

  stop(): Promise<void> {
    this.stopped ??= (async () => {
      this.stopping = true;
      this.wake.abort();
      try {
        // Waits for the batch in hand (our loop returns after the handler call in hand), commits the
        // resolved positions and leaves the group.
        await this.consumer.disconnect();
      } finally {
        this.onStopped();
      }
    })();
    return this.stopped;
  }
}

function toDelivery(topic: string, partition: number, message: KafkaMessage): DeliveredEvent {
  const position = `${partition}:${message.offset}`;
  if (!message.value) throw new Error(`record ${topic}[${position}] has no value: it is not a CloudEvent`);
  let event: CloudEvent;
  try {
    event = JSON.parse(message.value.toString('utf8')) as CloudEvent;
  } catch (error) {
    throw new Error(`record ${topic}[${position}] is not JSON: ${describe(error)}`);
  }
  return { topic, key: message.key?.toString('utf8') ?? '', event, position };
}

/** Errors kafkajs logs for one attempt and then retries or reports to us as an exception. */
const ROUTINE_KAFKAJS_ERRORS: Readonly<Record<string, RegExp>> = {
  Connection: /./, // a refused or closed connection, an error response to one request
  BrokerPool: /^Failed to connect to seed broker/,
  Producer: /^Failed to send messages/,
  Consumer: /^(Crash: |Restarting the consumer)/, // the subscription logs crashes itself
  Runner: /^The coordinator is not aware of this member/,
};

function isRoutineKafkajsError(namespace: string, message: string): boolean {
  return ROUTINE_KAFKAJS_ERRORS[namespace]?.test(message) ?? false;
}

function invalid(message: string): EventLogError {
  return new EventLogError(EventLogErrorCode.InvalidRecord, message);
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

async function withDeadline<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms ${what}`)), ms);
  });
  try {
    return await Promise.race([work, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/** kafkajs wraps the real cause (`originalError`, `cause`): name the whole chain, outermost first. */
function describe(error: unknown): string {
  const parts: string[] = [];
  let current: unknown = error;
  for (let depth = 0; current !== undefined && current !== null && depth < 5; depth += 1) {
    if (!(current instanceof Error)) {
      parts.push(String(current));
      break;
    }
    const text = current instanceof WriteFailed ? current.message : `${current.name}: ${current.message}`;
    if (!parts.some((p) => p.includes(current instanceof Error ? current.message : text))) parts.push(text);
    current = (current as { originalError?: unknown }).originalError ?? current.cause;
  }
  return parts.join(' <- ');
}

function hasKafkaErrorType(error: unknown, type: string): boolean {
  let current: unknown = error;
  for (let depth = 0; current && depth < 5; depth += 1) {
    if ((current as { type?: unknown }).type === type) return true;
    current = (current as { originalError?: unknown; cause?: unknown }).originalError ?? (current as { cause?: unknown }).cause;
  }
  return false;
}

function writeToStderr(line: KafkaLogLine): void {
  const extra = Object.keys(line.extra).length > 0 ? ` ${safeJson(line.extra)}` : '';
  process.stderr.write(`[${line.level}] ${line.source}: ${line.message}${extra}\n`);
}

function safeJson(value: unknown): string {
  try {
    return JSON.stringify(value);
  } catch {
    return '[unserialisable]';
  }
}
