import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { SERVICE_PROTOS, type auditV1 } from '@tracegate/contracts';
import { grpcClient, startServices, type PromiseClient, type RunningProcess } from '@tracegate/runtime';
import { expectEventually, freePort, startPostgres, type PostgresServer } from '@tracegate/test-harness';
import { auditService } from './audit.definition.js';
import { GatewaySessionScript } from './domain/session-events.testing.js';

const TOKEN = randomBytes(32).toString('base64url');

/** Every projected row of the sessions, statements and recorded results: what a rebuild must reproduce. */
async function projectionRows(db: pg.Client): Promise<unknown[][]> {
  const tables: unknown[][] = [];
  for (const sql of ['SELECT * FROM audit.sessions ORDER BY id', 'SELECT * FROM audit.statements ORDER BY session_id, sequence', 'SELECT * FROM audit.statement_results ORDER BY session_id, statement_id, chunk']) {
    tables.push((await db.query(sql)).rows);
  }
  return tables;
}

describe('audit service: masked result rows, masking hits and parameters from the gateway, on a real PostgreSQL event log', () => {
  let postgres: PostgresServer;
  let databaseUrl: string;
  let environment: Record<string, string>;
  let proc: RunningProcess | undefined;
  let db: pg.Client;
  let client: PromiseClient<auditV1.AuditServiceClient>;
  const start = async () => {
    proc = await startServices([auditService], { component: 'tracegate audit results test', databaseUrl, env: environment });
  };

  // As the gateway records a masked SELECT: the request with its masked parameters, the result in
  // two chunks (columns in the first), the completion with the total and the masking hits; then a
  // statement with no result rows.
  const script = new GatewaySessionScript(randomUUID(), Date.parse('2026-11-22T04:00:00Z'))
    .started({ identityName: 'ci-agent', target: 'billing' })
    .requested('r1', 'SELECT id, email, note FROM customers WHERE region = $1 AND tier = $2', {}, { protocol: 'extended', parameterCount: 2, parameters: ['<masked:region>', null] })
    .result(
      'r1',
      0,
      [
        ['1', '<email:7f3a>', null],
        ['2', '<email:91bc>', 'vip'],
      ],
      ['id', 'email', 'note'],
    )
    .result('r1', 1, [['3', '<email:0d4e>', '']])
    .completed('r1', { commandTag: 'SELECT 250', rows: 250, masked: { email: 3, 'pii-columns': 1 } })
    .requested('r2', 'UPDATE customers SET tier = 2 WHERE id = 3')
    .completed('r2', { commandTag: 'UPDATE 1', rows: 1 })
    .ended();

  before(async () => {
    postgres = await startPostgres();
    databaseUrl = await postgres.createDatabase();
    environment = {
      TRACEGATE_AUDIT_GRPC_PORT: String(await freePort()),
      TRACEGATE_AUDIT_METRICS_PORT: String(await freePort()),
      TRACEGATE_INTERNAL_TOKEN: TOKEN,
      TRACEGATE_LOG_LEVEL: 'silent',
      TRACEGATE_AUDIT_VERIFY_INTERVAL_MS: '0',
    };
    await start();
    db = new pg.Client({ connectionString: databaseUrl });
    await db.connect();
    client = grpcClient<auditV1.AuditServiceClient>(SERVICE_PROTOS.audit.files[0], 'tracegate.audit.v1.AuditService', `127.0.0.1:${environment.TRACEGATE_AUDIT_GRPC_PORT}`, {
      metadata: { 'x-tracegate-internal-token': TOKEN },
    });
    await proc!.eventLog.append(script.records());
    await expectEventually(async () => assert.equal((await client.getSession({ id: script.sessionId })).session!.lastSequence, script.events.length));
  });

  after(async () => {
    client?.close();
    await db?.end();
    await proc?.stop();
    await postgres?.stop();
  });

  it('shows each statement with its masked parameters, masking hits, result columns and the recorded rows in order, NULL as an unset value', async () => {
    const { statements } = await client.getSession({ id: script.sessionId });
    const [select, update] = statements;
    // (A proto3 optional field also shows its synthetic oneof on this client, so compare the text.)
    assert.deepEqual(select!.parameters.map((p) => p.text ?? null), ['<masked:region>', null]);
    assert.equal(select!.parameterCount, 2);
    assert.deepEqual(select!.masked, { email: 3, 'pii-columns': 1 });
    assert.deepEqual(select!.resultColumns, ['id', 'email', 'note']);
    assert.equal(select!.rowsRecorded, 3);
    assert.equal(select!.rowCount, 250);
    assert.deepEqual(
      select!.resultRows.map((row) => row.values.map((v) => v.text ?? null)),
      [
        ['1', '<email:7f3a>', null],
        ['2', '<email:91bc>', 'vip'],
        ['3', '<email:0d4e>', ''],
      ],
    );
    assert.deepEqual([update!.resultColumns, update!.resultRows, update!.rowsRecorded, update!.masked, update!.parameters], [[], [], 0, {}, []]);
  });

  it('replays the statements with the same rows', async () => {
    const replayed: auditV1.Statement[] = [];
    for await (const message of client.stream<auditV1.ReplaySessionResponse>('replaySession', { id: script.sessionId, realTime: false }) as AsyncIterable<auditV1.ReplaySessionResponse>) {
      replayed.push(message.statement!);
    }
    assert.deepEqual(replayed, (await client.getSession({ id: script.sessionId })).statements);
    assert.equal(replayed[0]!.resultRows.length, 3);
  });

  it('verifies the session intact with the result events, and names a recorded row changed, deleted or inserted', async () => {
    assert.deepEqual(await client.verifySession({ id: script.sessionId }), { intact: true, eventsChecked: script.events.length, problems: [] });
    const chunk0 = script.events[3]!.id;
    await db.query(`UPDATE audit.statement_results SET rows = '[["1","alice@example.com",null],["2","<email:91bc>","vip"]]' WHERE session_id = $1 AND chunk = 0`, [script.sessionId]);
    await db.query(`DELETE FROM audit.statement_results WHERE session_id = $1 AND chunk = 1`, [script.sessionId]);
    await db.query(`INSERT INTO audit.statement_results (session_id, statement_id, chunk, event_id, rows) VALUES ($1, 'r2', 0, 'forged', '[["x"]]')`, [script.sessionId]);
    await db.query(`UPDATE audit.statements SET rows_recorded = 2 WHERE session_id = $1 AND statement_id = 'r1'`, [script.sessionId]);
    const verdict = await client.verifySession({ id: script.sessionId });
    assert.equal(verdict.intact, false);
    assert.deepEqual(verdict.problems, [
      'statement 1 (id r1): rowsRecorded is 2 in the projection but 3 on the log',
      `result chunk 0 of statement r1 (event ${chunk0}): rows is [["1","alice@example.com",null],["2","<email:91bc>","vip"]] in the projection but [["1","<email:7f3a>",null],["2","<email:91bc>","vip"]] on the log`,
      `result chunk 1 of statement r1 (event ${script.events[4]!.id}) is on the log but has no projected rows: they were deleted`,
      'result chunk 0 of statement r2 is in the projection but on no event of the log: the rows were inserted',
    ]);
  });

  it('applies a redelivered result chunk once, and a rebuild over gRPC reproduces the rows, parameters and masking hits', async () => {
    // Undo the tampering of the previous test the honest way: rebuild from the log.
    for await (const progress of client.stream<auditV1.RebuildProjectionResponse>('rebuildProjection', {}) as AsyncIterable<auditV1.RebuildProjectionResponse>) if (progress.done) break;
    const rebuilt = await projectionRows(db);
    assert.equal(rebuilt[2]!.length, 2, 'one row per recorded chunk');
    assert.deepEqual(await client.verifySession({ id: script.sessionId }), { intact: true, eventsChecked: script.events.length, problems: [] });
    // Every event again from the beginning (a restart with the group's positions lost).
    await proc!.stop();
    await db.query(`DELETE FROM tracegate_log.consumer_offsets WHERE consumer_group LIKE 'audit-projection.%'`);
    await start();
    await expectEventually(async () => {
      const text = await (await fetch(`http://${proc!.services[0]!.metricsAddress}/metrics`)).text();
      const line = text.split('\n').find((l) => l.startsWith('tracegate_audit_events_projected_total{') && l.includes('outcome="duplicate"'));
      assert.equal(Number(line?.split(' ').at(-1) ?? 0), script.events.length, 'every event redelivered and recognised');
    });
    assert.deepEqual(await projectionRows(db), rebuilt);
    assert.equal((await client.getSession({ id: script.sessionId })).statements[0]!.rowsRecorded, 3);
    // And a schema dropped and rebuilt at start gives the same rows.
    await proc!.stop();
    await db.query(`DROP SCHEMA audit CASCADE`);
    await start();
    await expectEventually(async () => assert.deepEqual(await projectionRows(db), rebuilt), { description: 'the rebuilt projection to equal the live one' });
  });
});
