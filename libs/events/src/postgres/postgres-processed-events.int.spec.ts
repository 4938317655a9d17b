import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { startPostgres, type PostgresServer } from '@tracegate/test-harness';
import { GENESIS, sealEvent } from '../cloud-event.js';
import type { DeliveredEvent } from '../event-log.js';
import { idempotentHandler } from '../idempotent-handler.js';
import { PostgresProcessedEvents } from './postgres-processed-events.js';

describe('PostgresProcessedEvents: idempotent effects in the projection database', () => {
  let server: PostgresServer;
  let pool: pg.Pool;
  let store: PostgresProcessedEvents;

  before(async () => {
    server = await startPostgres();
    pool = new pg.Pool({ connectionString: await server.createDatabase() });
    store = new PostgresProcessedEvents(pool);
    await store.open();
    await pool.query('CREATE TABLE statement_counts (session_id text PRIMARY KEY, statements int NOT NULL)');
  });
  after(async () => {
    await pool?.end();
    await server?.stop();
  });

  function delivery(sessionId: string): DeliveredEvent {
    const event = sealEvent({ type: 'dev.tracegate.session.statement_requested.v1', subject: sessionId, source: '/tracegate/test', data: {} }, GENESIS);
    return { topic: 'tracegate.sessions.v1', key: sessionId, event, position: '1' };
  }

  /** The projection's effect: counts a session's statements, in the store's transaction. */
  const countStatement = async (d: DeliveredEvent, client: pg.PoolClient) => {
    await client.query(
      `INSERT INTO statement_counts VALUES ($1, 1) ON CONFLICT (session_id) DO UPDATE SET statements = statement_counts.statements + 1`,
      [d.key],
    );
  };

  async function countOf(sessionId: string): Promise<number | undefined> {
    const { rows } = await pool.query('SELECT statements FROM statement_counts WHERE session_id = $1', [sessionId]);
    return rows[0]?.statements as number | undefined;
  }

  it('applies a redelivered event once', async () => {
    const handler = idempotentHandler(store, 'statement-counts', countStatement);
    const d = delivery(`s-${randomUUID()}`);
    await handler(d);
    await handler(d);
    await handler(d);
    assert.equal(await countOf(d.key), 1);
    assert.equal(await store.has('statement-counts', d.event.id), true);
    assert.equal(await store.has('another-projection', d.event.id), false, 'processed ids are per consumer');
  });

  it('records neither the effect nor the id when the effect fails, so the redelivery applies it', async () => {
    const d = delivery(`s-${randomUUID()}`);
    let fail = true;
    const handler = idempotentHandler(store, 'statement-counts', async (event, client) => {
      await countStatement(event, client);
      if (fail) throw new Error('simulated failure after the effect was written');
    });
    await assert.rejects(handler(d), /simulated failure/);
    assert.equal(await countOf(d.key), undefined, 'the effect was rolled back with the failure');
    assert.equal(await store.has('statement-counts', d.event.id), false);

    fail = false;
    await handler(d);
    await handler(d);
    assert.equal(await countOf(d.key), 1);
  });

  it('applies an event once when two consumers deliver it at the same time', async () => {
    const d = delivery(`s-${randomUUID()}`);
    const handler = idempotentHandler(store, 'statement-counts', countStatement);
    const outcomes = await Promise.all(
      Array.from({ length: 5 }, () => store.runOnce('statement-counts', d.event.id, (client) => countStatement(d, client))),
    );
    assert.equal(outcomes.filter(Boolean).length, 1, 'exactly one delivery ran the effect');
    await handler(d);
    assert.equal(await countOf(d.key), 1);
  });
});
