import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type pg from 'pg';
import Cursor from 'pg-cursor';
import { startPostgres } from '@tracegate/test-harness';
import { MemoryRecorder, startGatewayFixture, type GatewayFixture } from './testing/gateway-fixture.js';

// node-postgres through the gateway: the extended protocol as a driver uses it, and the messages
// the target sends on its own (NotificationResponse, NoticeResponse, ParameterStatus).

describe('node-postgres through the gateway', () => {
  let target: Awaited<ReturnType<typeof startPostgres>>;
  let gateway: GatewayFixture;
  const recorder = new MemoryRecorder();
  const clients: pg.Client[] = [];

  const through = async (config: pg.ClientConfig = {}) => {
    const c = await gateway.client(config);
    clients.push(c);
    return c;
  };
  const direct = async (config: pg.ClientConfig = {}) => {
    const c = await gateway.direct(config);
    clients.push(c);
    return c;
  };

  before(async () => {
    target = await startPostgres();
    gateway = await startGatewayFixture(target, { recorder });
    const setup = await gateway.direct();
    await setup.query('CREATE TABLE events (id int PRIMARY KEY, kind text)');
    await setup.query("INSERT INTO events SELECT g, CASE WHEN g % 2 = 0 THEN 'even' ELSE 'odd' END FROM generate_series(1, 250) AS g");
    await setup.end();
  });

  after(async () => {
    await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
    await gateway?.close();
    await target?.stop();
  });

  it('prepares a named statement once on the target and reuses it, each execution recorded with its parameters', async () => {
    const c = await through();
    const byKind = (kind: string) => ({ name: 'count-by-kind', text: 'SELECT count(*)::int AS n FROM events WHERE kind = $1', values: [kind] });
    assert.deepEqual((await c.query(byKind('even'))).rows, [{ n: 125 }]);
    assert.deepEqual((await c.query(byKind('odd'))).rows, [{ n: 125 }]);
    assert.deepEqual((await c.query(byKind('none'))).rows, [{ n: 0 }]);
    const prepared = await c.query<{ name: string }>('SELECT name FROM pg_prepared_statements ORDER BY name');
    assert.deepEqual(prepared.rows, [{ name: 'count-by-kind' }], 'one statement on the target, not one per execution');
    const executions = recorder.statements.filter((s) => s.text === 'SELECT count(*)::int AS n FROM events WHERE kind = $1');
    assert.equal(executions.length, 3);
    assert.deepEqual(executions.map((e) => [e.parameterCount, e.completion?.commandTag, e.completion?.rows]), [
      [1, 'SELECT 1', 1],
      [1, 'SELECT 1', 1],
      [1, 'SELECT 1', 1],
    ]);
  });

  it('reads a cursor in batches: Execute with max_rows, PortalSuspended, then the rest', async () => {
    const c = await through();
    const text = 'SELECT id FROM events WHERE id <= 250 ORDER BY id';
    const cursor = c.query(new Cursor<{ id: number }>(text));
    const batches: number[][] = [];
    for (;;) {
      const rows = await cursor.read(100);
      if (rows.length === 0) break;
      batches.push(rows.map((r) => r.id));
    }
    await cursor.close();
    assert.deepEqual(batches.map((b) => b.length), [100, 100, 50]);
    assert.deepEqual(batches.flat(), Array.from({ length: 250 }, (_, i) => i + 1));
    // Each Execute is one recorded execution; a suspended one has no command tag.
    const executions = recorder.statements.filter((s) => s.text === text);
    assert.deepEqual(executions.map((e) => [e.completion?.commandTag, e.completion?.rows]), [
      ['', 100],
      ['', 100],
      ['SELECT 50', 50],
    ]);
    assert.deepEqual((await c.query('SELECT 1 AS still')).rows, [{ still: 1 }]);
  });

  it('passes a binary parameter (a Buffer is sent in binary format) byte for byte, the same as the target does directly', async () => {
    // node-postgres decodes every result column as text (pg-protocol has no binary parsing mode),
    // so binary *result* formats are covered by the differential test's raw Bind with result format 1.
    const bytes = Buffer.from([0, 1, 2, 0x80, 0xfe, 0xff]);
    const query = { text: 'SELECT $1::bytea AS b, length($1::bytea) AS len, $2::int4 + 1 AS n', values: [bytes, -42] };
    const viaTarget = (await (await direct()).query(query)).rows;
    const viaGateway = (await (await through()).query(query)).rows;
    assert.deepEqual(viaGateway, [{ b: bytes, len: 6, n: -41 }]);
    assert.deepEqual(viaGateway, viaTarget);
  });

  it('relays a NOTIFY sent by another connection to a listener that is idle', async () => {
    const listener = await through();
    await listener.query('LISTEN ledger_events');
    const notifier = await direct();
    const received = new Promise<pg.Notification>((resolve) => listener.once('notification', resolve));
    await notifier.query("NOTIFY ledger_events, 'invoice 42 paid'");
    const notification = await received;
    assert.equal(notification.channel, 'ledger_events');
    assert.equal(notification.payload, 'invoice 42 paid');
    assert.equal(notification.processId, (notifier as unknown as { processID: number }).processID, 'it names the target backend that sent it');
    assert.deepEqual((await listener.query('SELECT 2 AS after')).rows, [{ after: 2 }], 'the session is still in step');
  });

  it('relays NoticeResponse from a RAISE NOTICE, and ParameterStatus after SET application_name', async () => {
    const c = await through({ application_name: 'np-before' });
    const notices: string[] = [];
    c.on('notice', (n) => notices.push(n.message ?? ''));
    await c.query("DO $$ BEGIN RAISE NOTICE 'checked % invoices', 3; END $$");
    assert.deepEqual(notices, ['checked 3 invoices']);

    const statuses: [string, string][] = [];
    const connection = (c as unknown as { connection: { on(event: 'parameterStatus', f: (m: { parameterName: string; parameterValue: string }) => void): void } }).connection;
    connection.on('parameterStatus', (m) => statuses.push([m.parameterName, m.parameterValue]));
    await c.query("SET application_name = 'np-after'");
    assert.deepEqual(statuses, [['application_name', 'np-after']]);
    const d = await direct();
    const seen = await d.query<{ application_name: string }>("SELECT application_name FROM pg_stat_activity WHERE application_name LIKE 'np-%'");
    assert.deepEqual(seen.rows, [{ application_name: 'np-after' }], 'the target session itself was renamed');
  });
});
