import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, afterEach, before, describe, it } from 'node:test';
import pg from 'pg';
import { expectEventually, freePort, pollUntil, startPostgres, type PostgresServer } from '@tracegate/test-harness';
import { GENESIS, headOf, sealEvent, type ChainHead } from '../cloud-event.js';
import { eventLogContract } from '../event-log.contract.js';
import { EventLogError, EventLogErrorCode, type DeliveredEvent, type EventLog, type LogRecord } from '../event-log.js';
import { PostgresEventLog, type PostgresEventLogOptions } from './postgres-event-log.js';

/** Failures the log recovers from by itself are expected here (handlers that throw on purpose). */
const recovered: string[] = [];
const quiet: PostgresEventLogOptions = { onError: (message) => recovered.push(message) };

let contractServer: PostgresServer;
eventLogContract(
  'PostgresEventLog: event log contract',
  async () => {
    contractServer = await startPostgres();
    const url = await contractServer.createDatabase();
    return {
      // A ten-minute fallback poll: deliveries in these tests have to come through LISTEN/NOTIFY,
      // and a stop() that missed its wake-up would outlast the test's timeout.
      open: () => PostgresEventLog.connect(url, { ...quiet, pollIntervalMs: 600_000 }),
      freshTopic: () => `contract.${randomUUID()}`,
    };
  },
  () => contractServer.stop(),
);

describe('PostgresEventLog: PostgreSQL specifics', () => {
  let server: PostgresServer;
  let url: string;
  let admin: pg.Pool;
  const opened: EventLog[] = [];

  before(async () => {
    server = await startPostgres();
    url = await server.createDatabase();
    admin = new pg.Pool({ connectionString: url });
  });
  afterEach(async () => {
    await Promise.allSettled(opened.splice(0).map((log) => log.close()));
  });
  after(async () => {
    await admin?.end();
    await server?.stop();
  });

  async function open(options: PostgresEventLogOptions = {}, connectionString = url): Promise<PostgresEventLog> {
    const log = await PostgresEventLog.connect(connectionString, { ...quiet, ...options });
    opened.push(log);
    return log;
  }

  function collect(into: DeliveredEvent[]) {
    return async (delivery: DeliveredEvent) => {
      into.push(delivery);
    };
  }

  it('refuses UPDATE, DELETE and TRUNCATE on the log table', async () => {
    const log = await open();
    const records = new Records(`pg.${randomUUID()}`);
    const [receipt] = await log.append([records.next('immutable')]);
    assert.ok(receipt);

    for (const statement of [
      `UPDATE tracegate_log.events SET key = 'changed' WHERE position = ${receipt.position}`,
      `DELETE FROM tracegate_log.events WHERE position = ${receipt.position}`,
      'TRUNCATE tracegate_log.events',
    ]) {
      await assert.rejects(admin.query(statement), (error: Error & { code?: string }) => {
        assert.match(error.message, /event log is append-only/);
        assert.equal(error.code, '42501');
        return true;
      }, statement);
    }
    const { rows } = await admin.query('SELECT key, event_id FROM tracegate_log.events WHERE position = $1', [receipt.position]);
    assert.deepEqual(rows, [{ key: 'immutable', event_id: receipt.eventId }]);
  });

  it('answers an event id already in the log with its first position and stores it once', async () => {
    const log = await open();
    const records = new Records(`pg.${randomUUID()}`);
    const record = records.next('once');
    const [first] = await log.append([record]);
    const [again] = await log.append([record]);
    const concurrent = await Promise.all([log.append([record]), log.append([record])]);
    assert.ok(first && again);
    assert.equal(again.position, first.position);
    for (const [receipt] of concurrent) assert.equal(receipt?.position, first.position);

    const { rows } = await admin.query('SELECT count(*)::int AS n FROM tracegate_log.events WHERE event_id = $1', [record.event.id]);
    assert.equal(rows[0].n, 1);

    // The same id with other content is a producer bug, not a retry: refused, not overwritten.
    const forged = sealEvent({ type: record.event.type, subject: record.key, source: record.event.source, id: record.event.id, data: { forged: true } }, GENESIS);
    await assert.rejects(log.append([{ ...record, event: forged }]), (error: unknown) => {
      assert.ok(error instanceof EventLogError);
      assert.equal(error.code, EventLogErrorCode.InvalidRecord);
      assert.match(error.message, new RegExp(`event id ${record.event.id} is already in the log at position ${first.position}`));
      return true;
    });
  });

  it('lets a second subscriber of a group wait, and take over where the first stopped', async () => {
    const producer = await open();
    const records = new Records(`pg.${randomUUID()}`);
    const group = `takeover-${randomUUID()}`;
    const firstBatch = Array.from({ length: 10 }, (_, i) => records.next('takeover', { i }));
    await producer.append(firstBatch);

    const firstHandled: DeliveredEvent[] = [];
    const secondHandled: DeliveredEvent[] = [];
    const first = await (await open()).subscribe({ group, topics: [records.topic], handler: collect(firstHandled) });
    await expectEventually(() => assert.equal(firstHandled.length, 10));
    const second = await (await open({ takeoverPollMs: 50 })).subscribe({ group, topics: [records.topic], handler: collect(secondHandled) });
    const whileFirstRuns = Array.from({ length: 10 }, (_, i) => records.next('takeover', { i: 10 + i }));
    await producer.append(whileFirstRuns);
    await expectEventually(() => assert.equal(firstHandled.length, 20));
    assert.equal(secondHandled.length, 0, 'the second subscriber read nothing while the first held the group');

    await first.stop();
    const afterStop = Array.from({ length: 10 }, (_, i) => records.next('takeover', { i: 20 + i }));
    await producer.append(afterStop);
    await expectEventually(() => assert.equal(secondHandled.length, 10));
    await second.stop();
    assert.deepEqual(secondHandled.map((d) => d.event.id), afterStop.map((r) => r.event.id), 'the second subscriber started after the first one\'s last commit');
    assert.equal(firstHandled.length, 20);
  });

  it('leaves a failing event uncommitted when stopped during its back-off, and delivers it to the next subscriber', async () => {
    const producer = await open();
    const records = new Records(`pg.${randomUUID()}`);
    const group = `stop-in-backoff-${randomUUID()}`;
    const batch = [records.next('stuck'), records.next('stuck')];
    await producer.append(batch);

    let attempts = 0;
    const failing = await (await open()).subscribe({
      group,
      topics: [records.topic],
      retry: { initialMs: 60_000 },
      handler: async () => {
        attempts += 1;
        throw new Error('simulated handler failure');
      },
    });
    await pollUntil(() => attempts === 1, { description: 'the first failed attempt' });
    await failing.stop(); // must not wait out the one-minute back-off
    assert.equal(attempts, 1);

    const handled: DeliveredEvent[] = [];
    const next = await (await open()).subscribe({ group, topics: [records.topic], handler: collect(handled) });
    await expectEventually(() => assert.equal(handled.length, 2));
    await next.stop();
    assert.deepEqual(handled.map((d) => d.event.id), batch.map((r) => r.event.id));
  });

  it('starts a new group at the end of the log when fromBeginning is false, and keeps that place across a restart', async () => {
    const producer = await open();
    const records = new Records(`pg.${randomUUID()}`);
    const group = `from-end-${randomUUID()}`;
    const old = records.next('from-end');
    await producer.append([old]);

    const handled: DeliveredEvent[] = [];
    const first = await (await open()).subscribe({ group, topics: [records.topic], fromBeginning: false, handler: collect(handled) });
    // The group's starting place is stored as soon as the subscriber has taken it.
    await pollUntil(
      async () => (await admin.query('SELECT 1 FROM tracegate_log.consumer_offsets WHERE consumer_group = $1', [group])).rows.length === 1,
      { description: 'the new group to record where it starts' },
    );
    await first.stop();
    const appendedWhileStopped = records.next('from-end');
    await producer.append([appendedWhileStopped]);

    const second = await (await open()).subscribe({ group, topics: [records.topic], fromBeginning: false, handler: collect(handled) });
    await expectEventually(() => assert.equal(handled.length, 1));
    await second.stop();
    assert.deepEqual(handled.map((d) => d.event.id), [appendedWhileStopped.event.id], 'not the event from before the group existed, but the one appended while it was stopped');
  });

  it('wakes an idle subscriber through LISTEN/NOTIFY', async () => {
    const producer = await open();
    const records = new Records(`pg.${randomUUID()}`);
    const applicationName = `listen-${randomUUID().slice(0, 8)}`;
    const consumerUrl = withApplicationName(url, applicationName);
    const handled: DeliveredEvent[] = [];
    const subscription = await (await open({ pollIntervalMs: 600_000 }, consumerUrl)).subscribe({
      group: `listen-${randomUUID()}`,
      topics: [records.topic],
      handler: collect(handled),
    });
    // Wait until the subscriber has read an empty table and sits idle: only a notification can
    // bring it the next event within the test's time (its poll comes after ten minutes).
    await pollUntil(
      async () => {
        const { rows } = await admin.query(
          `SELECT 1 FROM pg_stat_activity WHERE application_name = $1 AND state = 'idle' AND query LIKE '%CROSS JOIN LATERAL%'`,
          [applicationName],
        );
        return rows.length === 1;
      },
      { description: 'the subscriber to wait for events' },
    );
    const record = records.next('wake');
    await producer.append([record]);
    await expectEventually(() => assert.deepEqual(handled.map((d) => d.event.id), [record.event.id]));
    await subscription.stop();
  });

  it('finds new events by polling when no notification comes', async () => {
    const producer = await open();
    const records = new Records(`pg.${randomUUID()}`);
    const handled: DeliveredEvent[] = [];
    // This consumer listens on a channel nobody notifies: only its poll can find the events.
    const consumer = await open({ channel: 'nobody_notifies_here', pollIntervalMs: 50 });
    const subscription = await consumer.subscribe({ group: `poll-${randomUUID()}`, topics: [records.topic], handler: collect(handled) });
    const batch = [records.next('polled'), records.next('polled')];
    for (const record of batch) await producer.append([record]);
    await expectEventually(() => assert.equal(handled.length, 2));
    await subscription.stop();
    assert.deepEqual(handled.map((d) => d.event.id), batch.map((r) => r.event.id));
  });

  it('makes an append wait for an earlier one still in flight, so no consumer skips a position', async () => {
    const records = new Records(`pg.${randomUUID()}`);
    const [early, late] = await Promise.all([open(), open()]);
    const handled: DeliveredEvent[] = [];
    const subscription = await (await open()).subscribe({ group: `commit-order-${randomUUID()}`, topics: [records.topic], handler: collect(handled) });
    // Holds the early append inside its transaction, after its row took a position.
    await admin.query(`
      CREATE OR REPLACE FUNCTION public.hold_append() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN PERFORM pg_advisory_xact_lock_shared(4242); RETURN NEW; END $$`);
    await admin.query(`CREATE TRIGGER hold_append BEFORE INSERT ON tracegate_log.events FOR EACH ROW WHEN (NEW.key = 'held') EXECUTE FUNCTION public.hold_append()`);
    const holder = await admin.connect();
    try {
      await holder.query('BEGIN');
      await holder.query('SELECT pg_advisory_xact_lock(4242)');
      const heldRecord = records.next('held');
      const heldAppend = early.append([heldRecord]);
      const waitingOnAdvisoryLocks = async () => {
        const { rows } = await admin.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND wait_event = 'advisory'`);
        return rows[0].n as number;
      };
      await pollUntil(async () => (await waitingOnAdvisoryLocks()) >= 1, { description: 'the early append to be held' });

      const lateRecord = records.next('free');
      let lateDone = false;
      const lateAppend = late.append([lateRecord]).finally(() => (lateDone = true));
      await pollUntil(async () => lateDone || (await waitingOnAdvisoryLocks()) >= 2, { description: 'the late append to finish or wait' });
      // Were the late append not to wait, give its consumer every chance to move past the held position.
      if (lateDone) await pollUntil(() => handled.length === 1, { description: 'the late event to be delivered' });
      await holder.query('COMMIT');

      const [[heldReceipt], [lateReceipt]] = await Promise.all([heldAppend, lateAppend]);
      assert.ok(heldReceipt && lateReceipt);
      assert.ok(BigInt(heldReceipt.position) < BigInt(lateReceipt.position));
      await expectEventually(() => assert.equal(handled.length, 2, `${handled.length} of 2 events delivered`));
      assert.deepEqual(handled.map((d) => d.event.id), [heldRecord.event.id, lateRecord.event.id]);
    } finally {
      holder.release();
      await subscription.stop();
      await admin.query('DROP TRIGGER hold_append ON tracegate_log.events');
    }
  });

  it('misses nothing while several logs append concurrently', async () => {
    const writers = await Promise.all([open(), open(), open()]);
    const records = new Records(`pg.${randomUUID()}`);
    const handled = new Map<string, number>();
    const consumer = await open({ batchSize: 7 });
    const subscription = await consumer.subscribe({
      group: `writers-${randomUUID()}`,
      topics: [records.topic],
      handler: async (delivery) => {
        handled.set(delivery.event.id, (handled.get(delivery.event.id) ?? 0) + 1);
      },
    });
    const appended: LogRecord[] = [];
    for (let round = 0; round < 20; round += 1) {
      const burst = writers.flatMap((writer, w) =>
        Array.from({ length: 30 }, (_, i) => {
          const record = records.next(`w${w}-r${round}-${i}`);
          appended.push(record);
          return writer.append([record]);
        }),
      );
      await Promise.all(burst);
    }
    await expectEventually(() => assert.equal(handled.size, appended.length, `${handled.size} of ${appended.length} delivered`));
    await subscription.stop();
    for (const record of appended) assert.equal(handled.get(record.event.id), 1, `event ${record.event.id} delivered exactly once`);
  });

  it('rejects an append with EventLogError Unavailable when PostgreSQL stops, saying the event was not recorded', async () => {
    const ownServer = await startPostgres();
    try {
      const log = await PostgresEventLog.connect(await ownServer.createDatabase(), quiet);
      opened.push(log);
      const records = new Records(`pg.${randomUUID()}`);
      await log.append([records.next('before-outage')]);
      await ownServer.stop();

      const lost = records.next('during-outage');
      await assert.rejects(log.append([lost]), (error: unknown) => {
        assert.ok(error instanceof EventLogError, `expected an EventLogError, got ${String(error)}`);
        assert.equal(error.code, EventLogErrorCode.Unavailable);
        assert.match(error.message, new RegExp(`^the event log in PostgreSQL failed to append event ${lost.event.id} \\(dev\\.tracegate\\.pgspec\\.recorded\\.v1\\) to ${lost.topic}; the event was not recorded: .+`));
        return true;
      });
    } finally {
      await ownServer.stop();
    }
  });

  it('rejects connecting and appending with EventLogError Unavailable when nothing listens at the address', async () => {
    const nowhere = `postgres://postgres:unused@127.0.0.1:${await freePort()}/postgres`;
    await assert.rejects(PostgresEventLog.connect(nowhere, quiet), (error: unknown) => {
      assert.ok(error instanceof EventLogError);
      assert.equal(error.code, EventLogErrorCode.Unavailable);
      assert.match(error.message, /could not prepare the event log schema 'tracegate_log' in PostgreSQL: .*ECONNREFUSED/);
      return true;
    });
    const log = new PostgresEventLog(nowhere, quiet);
    opened.push(log);
    const record = new Records(`pg.${randomUUID()}`).next('nowhere');
    await assert.rejects(log.append([record]), (error: unknown) => {
      assert.ok(error instanceof EventLogError);
      assert.equal(error.code, EventLogErrorCode.Unavailable);
      assert.match(error.message, new RegExp(`failed to append event ${record.event.id} .*; the event was not recorded: .*ECONNREFUSED`));
      return true;
    });
  });

  it('groups concurrent appends into few transactions', async () => {
    const log = await open();
    const records = new Records(`pg.${randomUUID()}`);
    const before = log.writeCount;
    await Promise.all(Array.from({ length: 300 }, (_, i) => log.append([records.next(`group-${i}`)])));
    const writes = log.writeCount - before;
    assert.ok(writes >= 1 && writes <= 3, `300 concurrent appends took ${writes} transactions`);
    const alone = log.writeCount;
    await log.append([records.next('alone')]);
    assert.equal(log.writeCount, alone + 1, 'a lone append is one transaction');
  });
});

class Records {
  private readonly heads = new Map<string, ChainHead>();
  constructor(readonly topic: string) {}

  next(key: string, data: Record<string, unknown> = {}): LogRecord {
    const event = sealEvent({ type: 'dev.tracegate.pgspec.recorded.v1', subject: key, source: '/tracegate/pg-spec', data }, this.heads.get(key) ?? GENESIS);
    this.heads.set(key, headOf(event));
    return { topic: this.topic, key, event };
  }
}

function withApplicationName(connectionString: string, applicationName: string): string {
  const parsed = new URL(connectionString);
  parsed.searchParams.set('application_name', applicationName);
  return parsed.toString();
}
