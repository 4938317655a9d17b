import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, afterEach, before, describe, it } from 'node:test';
import { expectEventually } from '@tracegate/test-harness';
import { GENESIS, cloudEventProblems, headOf, sealEvent, verifyChain, type ChainHead, type CloudEvent } from './cloud-event.js';
import {
  EventLogError,
  EventLogErrorCode,
  type AppendReceipt,
  type DeliveredEvent,
  type EventLog,
  type LogRecord,
} from './event-log.js';
import { InMemoryProcessedEvents, idempotentHandler } from './idempotent-handler.js';
import type { TopicSpec } from './topic-catalogue.js';

/**
 * The one behavioural contract of the {@link EventLog} port. Every adapter's integration spec
 * calls {@link eventLogContract}; an adapter is correct when it passes unchanged.
 *
 * What the suite relies on beyond the port's types:
 * - `close()` may be called more than once (the suite closes every log it opened after each test);
 * - a delivered event's `position` equals the position in the append receipt of that event;
 * - `Subscription.stop()` resolves only after the handler call in hand has finished, and no handler
 *   call starts after it resolves.
 */
export interface EventLogUnderTest {
  /** A new, independent EventLog connected to the same log (used to simulate a consumer restart). */
  open(): Promise<EventLog>;
  /** A topic name unused so far (tests must not see each other's events). Creating it is the adapter's ensureTopics. */
  freshTopic(): string;
}

const TEST_TIMEOUT_MS = 180_000;
const FAST_RETRY = { initialMs: 10, maxMs: 100 } as const;

export function eventLogContract(
  name: string,
  setup: () => Promise<EventLogUnderTest>,
  teardown: () => Promise<void>,
): void {
  describe(name, () => {
    let under: EventLogUnderTest;
    const opened: EventLog[] = [];

    before(async () => {
      under = await setup();
    });
    afterEach(async () => {
      await Promise.allSettled(opened.splice(0).map((log) => log.close()));
    });
    after(async () => {
      await teardown();
    });

    async function open(): Promise<EventLog> {
      const log = await under.open();
      opened.push(log);
      return log;
    }

    /** A fresh topic, created through the adapter, and a log to append to it. */
    async function freshTopicWithProducer(): Promise<{ topic: string; producer: EventLog; records: ChainedRecords }> {
      const topic = under.freshTopic();
      const producer = await open();
      await producer.ensureTopics([contractTopic(topic)]);
      return { topic, producer, records: new ChainedRecords(topic) };
    }

    it('delivers the events of each key in append order, with keys interleaved', { timeout: TEST_TIMEOUT_MS }, async () => {
      const { topic, producer, records } = await freshTopicWithProducer();
      const keys = ['order-a', 'order-b', 'order-c', 'order-d', 'order-e'];
      const appended: LogRecord[] = [];
      const receipts: AppendReceipt[] = [];
      const appendAndCheck = async (batch: LogRecord[]) => {
        const got = await producer.append(batch);
        assertReceiptsMatch(batch, got);
        appended.push(...batch);
        receipts.push(...got);
      };

      // Half the events exist before the consumer starts, half arrive while it runs.
      for (let round = 0; round < 10; round += 1) await appendAndCheck(keys.map((key) => records.next(key, { round })));
      // Several events of one key in a single call: their order within the call counts too.
      await appendAndCheck(Array.from({ length: 5 }, (_, i) => records.next('order-a', { run: i })));

      const consumer = await open();
      const delivered: DeliveredEvent[] = [];
      const subscription = await consumer.subscribe({
        group: freshGroup('order'),
        topics: [topic],
        fromBeginning: true,
        handler: async (delivery) => {
          delivered.push(delivery);
        },
      });
      for (let round = 10; round < 20; round += 1) await appendAndCheck(keys.map((key) => records.next(key, { round })));

      await expectEventually(() => assert.ok(delivered.length >= appended.length, `${delivered.length} of ${appended.length} events delivered`));
      await subscription.stop();

      assert.equal(delivered.length, appended.length, 'no event was delivered twice');
      for (const key of keys) {
        const expected = appended.filter((r) => r.key === key).map((r) => r.event);
        const got = delivered.filter((d) => d.key === key).map((d) => d.event);
        assert.deepEqual(got.map((e) => e.id), expected.map((e) => e.id), `events of ${key} in append order`);
        assert.deepEqual(got, expected, `events of ${key} arrive exactly as appended`);
        assert.deepEqual(verifyChain(got), [], `the chain of ${key} verifies`);
      }
      assertDeliveriesWellFormed(topic, delivered);
      const positionOf = new Map(receipts.map((r) => [r.eventId, r.position]));
      for (const d of delivered) assert.equal(d.position, positionOf.get(d.event.id), `position of ${d.event.id} matches its receipt`);
      assert.equal(new Set(receipts.map((r) => r.position)).size, receipts.length, 'every receipt has its own position');
    });

    it('loses nothing and repeats nothing across a consumer restart', { timeout: TEST_TIMEOUT_MS }, async () => {
      const { topic, producer, records } = await freshTopicWithProducer();
      const keys = ['restart-a', 'restart-b', 'restart-c'];
      const group = freshGroup('restart');
      const firstBatch = Array.from({ length: 30 }, (_, i) => records.next(keys[i % keys.length]!, { i }));
      assertReceiptsMatch(firstBatch, await producer.append(firstBatch));

      // The first consumer is held inside its 10th handler call while stop() is requested.
      const firstLog = await open();
      const handledByFirst: DeliveredEvent[] = [];
      const inHand = new Set<string>();
      let calls = 0;
      let stopResolved = false;
      let handlerInHandFinishedBeforeStop: boolean | undefined;
      let releaseGate!: () => void;
      const gate = new Promise<void>((resolve) => (releaseGate = resolve));
      let signalAtGate!: () => void;
      const atGate = new Promise<void>((resolve) => (signalAtGate = resolve));
      const first = await firstLog.subscribe({
        group,
        topics: [topic],
        fromBeginning: true,
        handler: async (delivery) => {
          calls += 1;
          inHand.add(delivery.event.id);
          if (calls === 10) {
            signalAtGate();
            await gate;
            // Some work after stop() was requested: stop() must wait for it.
            await sleep(20);
            handlerInHandFinishedBeforeStop = !stopResolved;
          }
          handledByFirst.push(delivery);
          inHand.delete(delivery.event.id);
        },
      });
      await atGate;
      const inHandAtStop = new Set(inHand);
      const stopping = first.stop().then(() => {
        stopResolved = true;
      });
      releaseGate();
      await stopping;
      const handledByFirstAtStop = handledByFirst.map((d) => d.event.id);
      await firstLog.close();

      assert.equal(handlerInHandFinishedBeforeStop, true, 'stop() waited for the handler call in hand');
      assert.ok(handledByFirstAtStop.length >= 10, 'the first consumer handled its first 10 events, including the one in hand');

      const secondBatch = Array.from({ length: 15 }, (_, i) => records.next(keys[i % keys.length]!, { i: 30 + i }));
      assertReceiptsMatch(secondBatch, await producer.append(secondBatch));
      const all = [...firstBatch, ...secondBatch];

      const secondLog = await open();
      const handledBySecond: DeliveredEvent[] = [];
      const second = await secondLog.subscribe({
        group,
        topics: [topic],
        fromBeginning: true,
        handler: async (delivery) => {
          handledBySecond.push(delivery);
        },
      });
      await expectEventually(() => {
        const seen = new Set([...handledByFirst, ...handledBySecond].map((d) => d.event.id));
        const missing = all.filter((r) => !seen.has(r.event.id)).length;
        assert.equal(missing, 0, `${missing} of ${all.length} events not delivered yet`);
      });
      await second.stop();

      assert.deepEqual(handledByFirst.map((d) => d.event.id), handledByFirstAtStop, 'no handler call of the first consumer after its stop()');
      assertNoDuplicates(handledByFirst, 'first consumer');
      assertNoDuplicates(handledBySecond, 'second consumer');
      const firstIds = new Set(handledByFirstAtStop);
      const repeated = handledBySecond.map((d) => d.event.id).filter((id) => firstIds.has(id));
      for (const id of repeated) {
        assert.ok(inHandAtStop.has(id), `event ${id} was handled by the first consumer and again after the restart, though it was not in hand at stop()`);
      }
      const delivered = [...handledByFirst, ...handledBySecond.filter((d) => !firstIds.has(d.event.id))];
      assert.equal(delivered.length, all.length);
      for (const key of keys) {
        const got = delivered.filter((d) => d.key === key).map((d) => d.event.id);
        assert.deepEqual(got, all.filter((r) => r.key === key).map((r) => r.event.id), `events of ${key} in append order across the restart`);
      }
      assertDeliveriesWellFormed(topic, delivered);
    });

    it('delivers an event again after its handler fails, before anything after it on the same key', { timeout: TEST_TIMEOUT_MS }, async () => {
      const { topic, producer, records } = await freshTopicWithProducer();
      const batch: LogRecord[] = [];
      for (let i = 0; i < 5; i += 1) batch.push(records.next('retry-a', { i }), records.next('retry-b', { i }));
      assertReceiptsMatch(batch, await producer.append(batch));
      const idsOf = (key: string) => batch.filter((r) => r.key === key).map((r) => r.event.id);
      const [a1, a2, a3, a4, a5] = idsOf('retry-a');
      assert.ok(a1 && a2 && a3 && a4 && a5);

      const consumer = await open();
      const attempts: DeliveredEvent[] = [];
      let failuresLeft = 2;
      const subscription = await consumer.subscribe({
        group: freshGroup('retry'),
        topics: [topic],
        fromBeginning: true,
        retry: FAST_RETRY,
        handler: async (delivery) => {
          attempts.push(delivery);
          if (delivery.event.id === a2 && failuresLeft > 0) {
            failuresLeft -= 1;
            throw new Error('simulated handler failure');
          }
        },
      });
      await expectEventually(() => {
        const seen = new Set(attempts.map((d) => d.event.id));
        assert.ok(batch.every((r) => seen.has(r.event.id)), `${seen.size} of ${batch.length} events delivered`);
      });
      await subscription.stop();

      assert.deepEqual(
        attempts.filter((d) => d.key === 'retry-a').map((d) => d.event.id),
        [a1, a2, a2, a2, a3, a4, a5],
        'the failing event is redelivered until it succeeds, and its successors wait for it',
      );
      assert.deepEqual(attempts.filter((d) => d.key === 'retry-b').map((d) => d.event.id), idsOf('retry-b'), 'the other key is delivered once each, in order');
      assertDeliveriesWellFormed(topic, attempts);
    });

    it('hands a batch handler consecutive events in key order, redelivers a failed batch whole, and reports the lag left', { timeout: TEST_TIMEOUT_MS }, async () => {
      const { topic, producer, records } = await freshTopicWithProducer();
      const batch: LogRecord[] = [];
      for (let i = 0; i < 40; i += 1) batch.push(records.next(`batch-${i % 4}`, { i }));
      assertReceiptsMatch(batch, await producer.append(batch));
      const group = freshGroup('batch');
      assert.equal(await producer.consumerLag(group, [topic]), batch.length, 'a group that never committed lags by the whole topic');

      const consumer = await open();
      const batches: DeliveredEvent[][] = [];
      let failuresLeft = 1;
      const subscription = await consumer.subscribe({
        group,
        topics: [topic],
        fromBeginning: true,
        retry: FAST_RETRY,
        maxBatchEvents: 8,
        batchHandler: async (deliveries) => {
          batches.push([...deliveries]);
          if (failuresLeft > 0) {
            failuresLeft -= 1;
            throw new Error('simulated batch failure');
          }
        },
      });
      await expectEventually(async () => assert.equal(await producer.consumerLag(group, [topic]), 0, 'every event committed'));
      await subscription.stop();

      assert.ok(batches.every((b) => b.length >= 1 && b.length <= 8), 'no batch exceeds maxBatchEvents');
      assert.deepEqual(batches[1]!.map((d) => d.event.id), batches[0]!.map((d) => d.event.id), 'the failed batch comes again, whole');
      const handled = batches.slice(1).flat();
      assertNoDuplicates(handled, 'batch handler after the failure');
      assert.equal(handled.length, batch.length);
      for (let k = 0; k < 4; k += 1) {
        assert.deepEqual(
          handled.filter((d) => d.key === `batch-${k}`).map((d) => d.event.id),
          batch.filter((r) => r.key === `batch-${k}`).map((r) => r.event.id),
          `key batch-${k} in append order`,
        );
      }
      assertDeliveriesWellFormed(topic, handled);
    });

    it('has no second effect when an event is redelivered after its effect was applied (idempotent consumer)', { timeout: TEST_TIMEOUT_MS }, async () => {
      const { topic, producer, records } = await freshTopicWithProducer();
      const batch = Array.from({ length: 12 }, (_, i) => records.next(`effect-${i % 3}`, { i }));
      assertReceiptsMatch(batch, await producer.append(batch));

      const processed = new InMemoryProcessedEvents();
      const effects = new Map<string, number>();
      const applyOnce = idempotentHandler(processed, 'contract-projection', async (delivery) => {
        effects.set(delivery.event.id, (effects.get(delivery.event.id) ?? 0) + 1);
      });
      // These handlers crash after the effect was applied and recorded: the log must redeliver.
      const crashing = [batch[1]!.event.id, batch[6]!.event.id, batch[11]!.event.id];
      const crashAfterEffect = new Set(crashing);
      const deliveries = new Map<string, number>();

      const consumer = await open();
      const subscription = await consumer.subscribe({
        group: freshGroup('effect'),
        topics: [topic],
        fromBeginning: true,
        retry: FAST_RETRY,
        handler: async (delivery) => {
          deliveries.set(delivery.event.id, (deliveries.get(delivery.event.id) ?? 0) + 1);
          await applyOnce(delivery);
          if (crashAfterEffect.delete(delivery.event.id)) throw new Error('simulated crash after the effect was applied');
        },
      });
      await expectEventually(() => {
        assert.equal(crashAfterEffect.size, 0, 'every planned crash happened');
        const done = batch.filter((r) => (deliveries.get(r.event.id) ?? 0) >= (crashing.includes(r.event.id) ? 2 : 1));
        assert.equal(done.length, batch.length, `${done.length} of ${batch.length} events fully delivered`);
      });
      await subscription.stop();

      for (const id of crashing) {
        assert.equal(deliveries.get(id), 2, `event ${id} was delivered again after the crash`);
      }
      for (const record of batch) {
        assert.equal(effects.get(record.event.id), 1, `event ${record.event.id} had exactly one effect`);
        assert.equal(processed.has('contract-projection', record.event.id), true);
      }

      // A replay from the beginning (a new group, as when a projection is rebuilt over a kept
      // store) delivers every event again and still has no second effect.
      const replayed: string[] = [];
      const replayLog = await open();
      const replay = await replayLog.subscribe({
        group: freshGroup('effect-replay'),
        topics: [topic],
        fromBeginning: true,
        handler: async (delivery) => {
          await applyOnce(delivery);
          replayed.push(delivery.event.id);
        },
      });
      await expectEventually(() => assert.ok(replayed.length >= batch.length, `${replayed.length} of ${batch.length} replayed`));
      await replay.stop();
      for (const record of batch) assert.equal(effects.get(record.event.id), 1, `event ${record.event.id} still had exactly one effect after the replay`);
    });

    it('acknowledges 2000 concurrent appends with distinct positions, groups their writes, and delivers each once', { timeout: TEST_TIMEOUT_MS }, async () => {
      const { topic, producer, records } = await freshTopicWithProducer();
      const count = 2000;
      // One key per event: concurrent appends promise no order between themselves.
      const batch = Array.from({ length: count }, (_, i) => records.next(`burst-${i}`, { i }));
      const writesBefore = writeCountOf(producer);
      const receipts = await Promise.all(batch.map((record) => producer.append([record])));
      const writesAfter = writeCountOf(producer);

      receipts.forEach((receipt, i) => assertReceiptsMatch([batch[i]!], receipt));
      const positions = new Set(receipts.map((r) => r[0]!.position));
      assert.equal(positions.size, count, 'every append has its own position');
      if (writesBefore !== undefined && writesAfter !== undefined) {
        const writes = writesAfter - writesBefore;
        assert.ok(writes >= 1, 'the appends were written');
        assert.ok(writes < count, `${count} concurrent appends took ${writes} writes: they were not grouped`);
      }

      const consumer = await open();
      const deliveries = new Map<string, number>();
      const delivered: DeliveredEvent[] = [];
      const subscription = await consumer.subscribe({
        group: freshGroup('burst'),
        topics: [topic],
        fromBeginning: true,
        handler: async (delivery) => {
          delivered.push(delivery);
          deliveries.set(delivery.event.id, (deliveries.get(delivery.event.id) ?? 0) + 1);
        },
      });
      await expectEventually(() => assert.equal(deliveries.size, count, `${deliveries.size} of ${count} events delivered`), { timeoutMs: 120_000 });
      await subscription.stop();

      for (const record of batch) assert.equal(deliveries.get(record.event.id), 1, `event ${record.event.id} delivered exactly once`);
      assert.equal(delivered.length, count);
      assertDeliveriesWellFormed(topic, delivered);
    });

    it('refuses an append after close() with EventLogError Closed', { timeout: TEST_TIMEOUT_MS }, async () => {
      const { topic } = await freshTopicWithProducer();
      const log = await open();
      await log.close();
      const record = new ChainedRecords(topic).next('closed-a');
      await assert.rejects(log.append([record]), (error: unknown) => {
        assert.ok(error instanceof EventLogError, `expected an EventLogError, got ${String(error)}`);
        assert.equal(error.code, EventLogErrorCode.Closed);
        return true;
      });
    });
  });
}

/** Builds records whose events are sealed and chained per key, as real producers do. */
class ChainedRecords {
  private readonly heads = new Map<string, ChainHead>();

  constructor(private readonly topic: string) {}

  next(key: string, data: Record<string, unknown> = {}): LogRecord {
    const event = sealEvent(
      { type: 'dev.tracegate.contract.recorded.v1', subject: key, source: '/tracegate/event-log-contract', data: { key, ...data } },
      this.heads.get(key) ?? GENESIS,
    );
    this.heads.set(key, headOf(event));
    return { topic: this.topic, key, event };
  }
}

function contractTopic(name: string): TopicSpec {
  return {
    name,
    key: 'contract aggregate id',
    aggregates: ['contract'],
    partitions: 3,
    retentionMs: -1,
    description: 'Created by the event log contract suite.',
  };
}

function freshGroup(purpose: string): string {
  return `contract-${purpose}-${randomUUID()}`;
}

function writeCountOf(log: EventLog): number | undefined {
  const count = (log as Partial<{ writeCount: unknown }>).writeCount;
  return typeof count === 'number' ? count : undefined;
}

function assertReceiptsMatch(records: readonly LogRecord[], receipts: readonly AppendReceipt[]): void {
  assert.equal(receipts.length, records.length, 'one receipt per appended record');
  records.forEach((record, i) => {
    const receipt = receipts[i]!;
    assert.equal(receipt.eventId, record.event.id, `receipt ${i} answers record ${i}`);
    assert.equal(receipt.topic, record.topic);
    assert.equal(receipt.key, record.key);
    assert.equal(typeof receipt.position, 'string');
    assert.notEqual(receipt.position, '');
  });
}

function assertNoDuplicates(deliveries: readonly DeliveredEvent[], who: string): void {
  const ids = deliveries.map((d) => d.event.id);
  assert.equal(new Set(ids).size, ids.length, `the ${who} handled no event twice`);
}

/** Every delivered envelope is a valid CloudEvent and each key's chain verifies in delivery order. */
function assertDeliveriesWellFormed(topic: string, deliveries: readonly DeliveredEvent[]): void {
  const byKey = new Map<string, CloudEvent[]>();
  const seen = new Set<string>();
  for (const delivery of deliveries) {
    assert.equal(delivery.topic, topic);
    assert.equal(delivery.key, delivery.event.subject, 'records are keyed by their aggregate');
    assert.deepEqual(cloudEventProblems(delivery.event), [], `event ${delivery.event.id} is a valid CloudEvent`);
    if (seen.has(delivery.event.id)) continue; // a redelivery is not a second link in the chain
    seen.add(delivery.event.id);
    const events = byKey.get(delivery.key) ?? [];
    events.push(delivery.event);
    byKey.set(delivery.key, events);
  }
  for (const [key, events] of byKey) assert.deepEqual(verifyChain(events), [], `the chain of ${key} verifies`);
}
