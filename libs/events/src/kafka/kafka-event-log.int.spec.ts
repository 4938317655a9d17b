import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import kafkajs, { type Consumer } from 'kafkajs';
import { expectEventually, pollUntil, startKafka, type KafkaBroker } from '@tracegate/test-harness';
import { GENESIS, headOf, sealEvent, type ChainHead } from '../cloud-event.js';
import { eventLogContract } from '../event-log.contract.js';
import { EventLogError, EventLogErrorCode, type AppendReceipt, type DeliveredEvent, type LogRecord } from '../event-log.js';
import { ALL_TOPICS, type TopicSpec } from '../topic-catalogue.js';
import { KafkaEventLog, type KafkaLogLine } from './kafka-event-log.js';

const { ConfigResourceTypes, Kafka, logLevel } = kafkajs;
const TIMEOUT_MS = 180_000;

// One broker for the whole file.
let kafka: KafkaBroker;

before(async () => {
  kafka = await startKafka();
});

after(async () => {
  await kafka?.stop();
});

function freshTopic(): string {
  return `t-${randomUUID()}`;
}

function spec(name: string, partitions: number): TopicSpec {
  return { name, key: 'test key', aggregates: ['kafkatest'], partitions, retentionMs: -1, description: 'kafka-event-log.int.spec' };
}

/** Sealed, chained records per key, as producers write them. */
class Records {
  private readonly heads = new Map<string, ChainHead>();
  constructor(private readonly topic: string) {}
  next(key: string, data: Record<string, unknown> = {}): LogRecord {
    const event = sealEvent(
      { type: 'dev.tracegate.kafkatest.recorded.v1', subject: key, source: '/tracegate/kafka-event-log-spec', data },
      this.heads.get(key) ?? GENESIS,
    );
    this.heads.set(key, headOf(event));
    return { topic: this.topic, key, event };
  }
}

/** Keeps expected client-side errors (a killed broker, a rebalance) off the console. */
function collector(): { lines: KafkaLogLine[]; log: (line: KafkaLogLine) => void } {
  const lines: KafkaLogLine[] = [];
  return { lines, log: (line) => lines.push(line) };
}

/** The events of `topic`, read from the beginning by a new consumer group until every id in `ids` was seen. */
async function readUntilSeen(topic: string, ids: ReadonlySet<string>): Promise<DeliveredEvent[]> {
  const log = new KafkaEventLog({ brokers: kafka.brokers, log: collector().log });
  const delivered: DeliveredEvent[] = [];
  const subscription = await log.subscribe({
    group: `read-all-${randomUUID()}`,
    topics: [topic],
    fromBeginning: true,
    handler: async (d) => {
      delivered.push(d);
    },
  });
  try {
    await expectEventually(
      () => {
        const seen = new Set(delivered.map((d) => d.event.id));
        const missing = [...ids].filter((id) => !seen.has(id));
        assert.deepEqual(missing, [], `${missing.length} of ${ids.size} acknowledged events not (yet) read back from ${topic}`);
      },
      { timeoutMs: 60_000 },
    );
  } finally {
    await subscription.stop();
    await log.close();
  }
  return delivered;
}

eventLogContract(
  'KafkaEventLog',
  async () => ({
    open: async () => new KafkaEventLog({ brokers: kafka.brokers }),
    freshTopic,
  }),
  async () => {
    // The broker belongs to the file: stopped by the top-level after().
  },
);

describe('KafkaEventLog on Kafka 4.1 (KRaft, single node)', () => {
  it('kafkajs 2.2.4 produces, consumes, and splits partitions between two members of a group', { timeout: TIMEOUT_MS }, async () => {
    const topic = freshTopic();
    const partitions = 4;
    const client = new Kafka({ clientId: 'compat', brokers: [kafka.brokers], logLevel: logLevel.NOTHING });
    const admin = client.admin();
    const producer = client.producer({ idempotent: true, maxInFlightRequests: 1 });
    const consumers: Consumer[] = [];
    try {
      await admin.connect();
      assert.equal(await admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: partitions, replicationFactor: 1 }] }), true);
      await producer.connect();
      const send = async (from: number, count: number) => {
        const messages = Array.from({ length: count }, (_, i) => ({ key: `key-${from + i}`, value: String(from + i) }));
        const acks = await producer.send({ topic, acks: -1, messages });
        assert.ok(acks.every((a) => a.errorCode === 0));
      };

      const group = `compat-${randomUUID()}`;
      const consumed: { member: 'a' | 'b'; value: number; partition: number }[] = [];
      const assignments: Record<'a' | 'b', number[]> = { a: [], b: [] };
      const startMember = async (member: 'a' | 'b') => {
        const consumer = client.consumer({ groupId: group, heartbeatInterval: 500, maxWaitTimeInMs: 500 });
        consumers.push(consumer);
        consumer.on(consumer.events.GROUP_JOIN, (event) => {
          assignments[member] = [...(event.payload.memberAssignment[topic] ?? [])].sort();
        });
        await consumer.connect();
        await consumer.subscribe({ topics: [topic], fromBeginning: true });
        await consumer.run({
          eachMessage: async ({ partition, message }) => {
            consumed.push({ member, value: Number(message.value?.toString()), partition });
          },
        });
      };

      await send(0, 40);
      await startMember('a');
      await expectEventually(() => assert.equal(consumed.length, 40, 'member a alone consumes the first 40'));
      assert.deepEqual(assignments.a, [0, 1, 2, 3], 'alone, member a has every partition');

      await startMember('b');
      await expectEventually(() => {
        assert.ok(assignments.b.length > 0, `member b has partitions (${assignments.b.join(',')})`);
        assert.ok(assignments.a.length > 0, `member a kept partitions (${assignments.a.join(',')})`);
        assert.deepEqual([...assignments.a, ...assignments.b].sort(), [0, 1, 2, 3], 'the two members split the 4 partitions');
      });
      await send(40, 40);
      await expectEventually(() => assert.equal(new Set(consumed.map((c) => c.value)).size, 80, 'all 80 messages consumed'));

      assert.equal(consumed.length, 80, 'no message was consumed twice across the rebalance');
      const second = consumed.filter((c) => c.value >= 40);
      for (const member of ['a', 'b'] as const) {
        const mine = second.filter((c) => c.member === member);
        assert.ok(mine.length > 0, `member ${member} consumed part of the second 40`);
        for (const c of mine) assert.ok(assignments[member].includes(c.partition), `member ${member} consumed only its own partitions`);
      }
    } finally {
      await Promise.allSettled(consumers.map((c) => c.disconnect()));
      await producer.disconnect();
      await admin.disconnect();
    }
  });

  it('delivers every event exactly once, per key in order, while a second subscription joins the group', { timeout: TIMEOUT_MS }, async () => {
    const topic = freshTopic();
    const quiet = collector();
    const producerLog = new KafkaEventLog({ brokers: kafka.brokers, log: quiet.log });
    const logA = new KafkaEventLog({ brokers: kafka.brokers, log: quiet.log });
    const logB = new KafkaEventLog({ brokers: kafka.brokers, log: quiet.log });
    try {
      await producerLog.ensureTopics([spec(topic, 6)]);
      const records = new Records(topic);
      const keys = Array.from({ length: 12 }, (_, i) => `rebalance-${i}`);
      const appended: LogRecord[] = [];
      const delivered: { member: 'a' | 'b'; delivery: DeliveredEvent }[] = [];
      const group = `rebalance-${randomUUID()}`;
      const subscribe = (log: KafkaEventLog, member: 'a' | 'b') =>
        log.subscribe({ group, topics: [topic], handler: async (delivery) => void delivered.push({ member, delivery }) });
      const appendRound = async (round: number) => {
        const batch = keys.map((key) => records.next(key, { round }));
        await producerLog.append(batch);
        appended.push(...batch);
      };

      const a = await subscribe(logA, 'a');
      let round = 0;
      for (; round < 5; round += 1) await appendRound(round);
      const b = await subscribe(logB, 'b');
      // Keep appending until b has taken over partitions and a still consumes its own.
      const { index: bFirst } = await pollUntil(
        async () => {
          await appendRound(round++);
          await sleep(50);
          const index = delivered.findIndex((d) => d.member === 'b');
          return index >= 0 && { index };
        },
        { timeoutMs: 60_000, description: 'the second subscription to receive events' },
      );
      for (let extra = 0; extra < 5; extra += 1) await appendRound(round++);
      await expectEventually(() => assert.ok(delivered.length >= appended.length, `${delivered.length} of ${appended.length} delivered`));
      await Promise.all([a.stop(), b.stop()]);

      const ids = delivered.map((d) => d.delivery.event.id);
      assert.equal(new Set(ids).size, ids.length, 'no event delivered twice across the rebalance');
      assert.equal(ids.length, appended.length, 'no event lost across the rebalance');
      for (const key of keys) {
        assert.deepEqual(
          delivered.filter((d) => d.delivery.key === key).map((d) => d.delivery.event.id),
          appended.filter((r) => r.key === key).map((r) => r.event.id),
          `events of ${key} in append order across the rebalance`,
        );
      }
      assert.ok(delivered.slice(bFirst).some((d) => d.member === 'a'), 'after b joined, a still consumed its share');
      const partitionsOf = (member: 'a' | 'b') => new Set(delivered.slice(bFirst).filter((d) => d.member === member).map((d) => d.delivery.position.split(':')[0]));
      const shared = [...partitionsOf('a')].filter((p) => partitionsOf('b').has(p));
      assert.deepEqual(shared, [], 'after the rebalance each partition is consumed by one member only');
    } finally {
      await Promise.allSettled([producerLog.close(), logA.close(), logB.close()]);
    }
  });

  it('refuses appends with EventLogError Unavailable while the broker is down, keeps every acknowledged event, and appends again after a restart', { timeout: TIMEOUT_MS }, async () => {
    const topic = freshTopic();
    const quiet = collector();
    const log = new KafkaEventLog({ brokers: kafka.brokers, ackTimeoutMs: 4000, log: quiet.log });
    try {
      await log.ensureTopics([spec(topic, 3)]);
      const records = new Records(topic);
      // `started`: how many appends had completed when this one started; `done`: its completion rank.
      const acknowledged: { record: LogRecord; receipt: AppendReceipt; phase: string; started: number; done: number }[] = [];
      const refused: { record: LogRecord; error: unknown; phase: string; started: number }[] = [];
      let completed = 0;
      let phase: 'before' | 'down' | 'restarting' | 'after' = 'before';
      let running = true;
      // Four writers, each appending one event at a time: appends are in flight when the broker dies.
      const writers = Array.from({ length: 4 }, async (_, w) => {
        for (let i = 0; running; i += 1) {
          const record = records.next(`writer-${w}`, { i });
          const startedIn = phase;
          const started = completed;
          try {
            const [receipt] = await log.append([record]);
            acknowledged.push({ record, receipt: receipt!, phase: startedIn, started, done: ++completed });
          } catch (error) {
            completed += 1;
            refused.push({ record, error, phase: startedIn, started });
            await sleep(20);
          }
        }
      });
      try {
        await pollUntil(() => acknowledged.length >= 50, { description: '50 appends acknowledged before the crash' });
        await kafka.kill();
        phase = 'down';
        await pollUntil(() => refused.filter((r) => r.phase === 'down').length >= 8, { timeoutMs: 60_000, description: 'appends refused while the broker is down' });
        phase = 'restarting';
        await kafka.restart();
        phase = 'after';
        await pollUntil(() => acknowledged.filter((a) => a.phase === 'after').length >= 50, { timeoutMs: 90_000, description: '50 appends acknowledged after the restart' });
      } finally {
        running = false;
        await Promise.all(writers);
      }

      assert.ok(refused.length > 0);
      for (const { record, error } of refused) {
        assert.ok(error instanceof EventLogError, `expected an EventLogError, got ${String(error)}`);
        assert.equal(error.code, EventLogErrorCode.Unavailable);
        assert.match(
          error.message,
          new RegExp(
            `^the event log \\(Kafka at ${kafka.brokers.replace(/\./g, '\\.')}\\) did not acknowledge event ${record.event.id} .*: it was not recorded and the command must not run$`,
            's',
          ),
        );
      }
      assert.ok(refused.some((r) => r.phase === 'down'), 'appends were refused while the broker was down');
      // The producer does not stay stuck: once one append succeeded after the restart, every append
      // started after that succeeded too.
      const firstAfter = Math.min(...acknowledged.filter((a) => a.phase === 'after').map((a) => a.done));
      const refusedLater = refused.filter((r) => r.started >= firstAfter);
      assert.deepEqual(refusedLater.map((r) => String(r.error)), [], 'no append refused once appends succeeded again after the restart');

      // Everything acknowledged, before, during and after the crash, is in the topic, once.
      const expected = new Set(acknowledged.map((a) => a.record.event.id));
      const delivered = await readUntilSeen(topic, expected);
      const deliveredIds = delivered.map((d) => d.event.id);
      const missing = [...expected].filter((id) => !deliveredIds.includes(id));
      assert.deepEqual(missing, [], 'every acknowledged event is in the log');
      assert.equal(new Set(deliveredIds).size, deliveredIds.length, 'no event is in the log twice');
      const positionOf = new Map(delivered.map((d) => [d.event.id, d.position]));
      for (const { record, receipt } of acknowledged) assert.equal(receipt.position, positionOf.get(record.event.id), `receipt position of ${record.event.id}`);
      // Events refused may or may not have reached the log (a timeout is ambiguous): at most once.
      const unexpected = deliveredIds.filter((id) => !expected.has(id) && !refused.some((r) => r.record.event.id === id));
      assert.deepEqual(unexpected, [], 'the log holds only events that were appended');
    } finally {
      await log.close();
      if (!kafka.isRunning()) await kafka.restart();
    }
  });

  it('refuses appends with EventLogError Unavailable while the broker hangs, and after it resumes every receipt names its own event', { timeout: TIMEOUT_MS }, async () => {
    // A hung broker (SIGSTOP) is the ambiguous case: requests time out on the client while they sit
    // in the broker's socket, and are written when it resumes. The producer must not then reuse
    // sequence numbers of a request that was in fact written, or the broker would answer new records
    // as duplicates of old ones: acknowledged, with another event's offset, and never stored.
    const topic = freshTopic();
    const quiet = collector();
    const log = new KafkaEventLog({ brokers: kafka.brokers, ackTimeoutMs: 800, requestTimeoutMs: 500, log: quiet.log });
    try {
      await log.ensureTopics([spec(topic, 1)]);
      const records = new Records(topic);
      const acknowledged: { record: LogRecord; receipt: AppendReceipt; phase: string }[] = [];
      const refused: { record: LogRecord; error: unknown; phase: string }[] = [];
      let phase: 'before' | 'hung' | 'after' = 'before';
      let running = true;
      const writers = Array.from({ length: 4 }, async (_, w) => {
        for (let i = 0; running; i += 1) {
          const record = records.next(`hang-${w}`, { i });
          const startedIn = phase;
          try {
            const [receipt] = await log.append([record]);
            acknowledged.push({ record, receipt: receipt!, phase: startedIn });
          } catch (error) {
            refused.push({ record, error, phase: startedIn });
          }
        }
      });
      try {
        await pollUntil(() => acknowledged.length >= 30, { description: '30 appends acknowledged before the hang' });
        kafka.pause();
        phase = 'hung';
        await pollUntil(() => refused.filter((r) => r.phase === 'hung').length >= 2, { timeoutMs: 60_000, description: 'appends refused while the broker hangs' });
        kafka.resume();
        phase = 'after';
        await pollUntil(() => acknowledged.filter((a) => a.phase === 'after').length >= 30, { timeoutMs: 90_000, description: '30 appends acknowledged after the broker resumed' });
      } finally {
        running = false;
        kafka.resume();
        await Promise.all(writers);
      }

      for (const { record, error } of refused) {
        assert.ok(error instanceof EventLogError, `expected an EventLogError, got ${String(error)}`);
        assert.equal(error.code, EventLogErrorCode.Unavailable);
        assert.match(error.message, new RegExp(`did not acknowledge event ${record.event.id} .*: it was not recorded and the command must not run$`, 's'));
      }
      const expected = new Set(acknowledged.map((a) => a.record.event.id));
      const delivered = await readUntilSeen(topic, expected);
      const atPosition = new Map(delivered.map((d) => [d.position, d.event.id]));
      for (const { record, receipt } of acknowledged) {
        assert.equal(atPosition.get(receipt.position), record.event.id, `the receipt of ${record.event.id} names the position holding it`);
      }
      const ids = delivered.map((d) => d.event.id);
      assert.equal(new Set(ids).size, ids.length, 'no event is in the log twice');
    } finally {
      kafka.resume();
      await log.close();
    }
  });

  it('creates topics with infinite retention and the delete cleanup policy, never compacted', { timeout: TIMEOUT_MS }, async () => {
    const log = new KafkaEventLog({ brokers: kafka.brokers });
    const topic = freshTopic();
    const client = new Kafka({ clientId: 'describe', brokers: [kafka.brokers], logLevel: logLevel.NOTHING });
    const admin = client.admin();
    try {
      const specs = [spec(topic, 4), ...ALL_TOPICS];
      await log.ensureTopics(specs);
      await log.ensureTopics(specs); // a second call finds them all and changes nothing
      await admin.connect();
      const metadata = await admin.fetchTopicMetadata({ topics: specs.map((s) => s.name) });
      const described = await admin.describeConfigs({
        includeSynonyms: false,
        resources: specs.map((s) => ({ type: ConfigResourceTypes.TOPIC, name: s.name, configNames: ['retention.ms', 'cleanup.policy'] })),
      });
      for (const s of specs) {
        assert.equal(metadata.topics.find((t) => t.name === s.name)?.partitions.length, s.partitions, `${s.name} has ${s.partitions} partitions`);
        const resource = described.resources.find((r) => r.resourceName === s.name);
        assert.ok(resource, `configs of ${s.name} described`);
        const value = (name: string) => resource.configEntries.find((e) => e.configName === name)?.configValue;
        assert.equal(value('retention.ms'), '-1', `${s.name} keeps events forever`);
        assert.equal(value('cleanup.policy'), 'delete', `${s.name} is never compacted`);
      }
    } finally {
      await admin.disconnect();
      await log.close();
    }
  });

  it('refuses a record for a topic that does not exist with EventLogError InvalidRecord', { timeout: TIMEOUT_MS }, async () => {
    const log = new KafkaEventLog({ brokers: kafka.brokers, log: collector().log });
    try {
      const topic = freshTopic();
      const record = new Records(topic).next('missing-topic');
      await assert.rejects(log.append([record]), (error: unknown) => {
        assert.ok(error instanceof EventLogError, `expected an EventLogError, got ${String(error)}`);
        assert.equal(error.code, EventLogErrorCode.InvalidRecord);
        assert.match(error.message, new RegExp(`topic ${topic}, which does not exist`));
        return true;
      });
      // Creating it afterwards makes the same append work: the absence was not cached.
      await log.ensureTopics([spec(topic, 1)]);
      const [receipt] = await log.append([record]);
      assert.equal(receipt?.position, '0:0');
    } finally {
      await log.close();
    }
  });
});
