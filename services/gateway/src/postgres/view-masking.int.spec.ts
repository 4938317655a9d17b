import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { compileProfile } from '@tracegate/masking-engine';
import { startPostgres } from '@tracegate/test-harness';
import type { MaskingProfiles, StatementContext, StatementDecision, StatementJudge } from './ports.js';
import { AGENT, MemoryRecorder, startGatewayFixture, type GatewayFixture } from './testing/gateway-fixture.js';
import type { TargetEndpoint } from './upstream-login.js';

// A column rule follows its column through views: a view that renames, casts or concatenates a
// masked column must not reveal it, whether the view was made before the session, by another
// connection during it, or by the session itself (committed or not). The profile has column
// rules only — no detectors — so only the lineage through the views can find these columns.

/** Each pattern matches a raw value of users, never its masked form. */
const RAW = { nickname: /secret-nick-\d+/i, email: /person\d+@example/i };

function assertNoRawValue(text: string, where: string): void {
  for (const [kind, pattern] of Object.entries(RAW)) {
    const found = pattern.exec(text);
    assert.equal(found, null, `a raw ${kind} (${found?.[0]}) reached ${where}`);
  }
}

class ColumnsJudge implements StatementJudge {
  async decide(_statement: StatementContext): Promise<StatementDecision> {
    return { effect: 'allow', rule: 'agents-read', reason: '', policyVersion: 'v1', maskingProfile: 'columns' };
  }
}

describe('masking through views', () => {
  let target: Awaited<ReturnType<typeof startPostgres>>;
  let gateway: GatewayFixture;
  const recorder = new MemoryRecorder();
  const profile = compileProfile(
    {
      name: 'columns',
      version: '1',
      rules: [
        { name: 'nickname', column: 'users.nickname', strategy: 'redact' },
        { name: 'email', column: 'users.email', strategy: 'partial', keepLast: 4 },
      ],
    },
    { hashKey: randomBytes(32) },
  );
  const profiles: MaskingProfiles = { profile: (name) => (name === 'columns' ? profile : undefined) };
  const clients: pg.Client[] = [];
  const through = async () => {
    const c = await gateway.client();
    clients.push(c);
    return c;
  };
  const onTarget = async (...statements: string[]) => {
    const c = await gateway.direct();
    try {
      for (const sql of statements) await c.query(sql);
    } finally {
      await c.end();
    }
  };

  before(async () => {
    target = await startPostgres();
    // The same database as a role that may hold one connection only: the catalog's side
    // connection is refused while a session holds that one.
    const server = new URL(target.url);
    const limited: TargetEndpoint = { name: 'limited', host: server.hostname, port: Number(server.port), database: 'billing', user: 'one_connection', password: 'one-connection-pw', tls: 'disable' };
    gateway = await startGatewayFixture(target, { recorder, judge: new ColumnsJudge(), masking: profiles, recordedRows: 10, targets: new Map([['limited', limited]]) });
    await onTarget(
      'CREATE TABLE users (id int PRIMARY KEY, email text, nickname text)',
      "INSERT INTO users SELECT g, 'person' || g || '@example.com', 'secret-nick-' || g FROM generate_series(1, 50) AS g",
      'CREATE VIEW contacts AS SELECT email AS contact, nickname AS handle, id FROM users',
      "CREATE VIEW contact_labels AS SELECT upper(handle) || ' <' || contact::varchar(80) || '>' AS label, id FROM contacts",
      'CREATE MATERIALIZED VIEW aliases AS SELECT nickname AS alias, id FROM users',
      'CREATE SCHEMA reporting',
      'CREATE VIEW reporting.handles AS SELECT reverse(nickname) AS backwards FROM users',
      'CREATE VIEW doubled AS SELECT id, id * 2 AS twice FROM users',
      "CREATE ROLE one_connection LOGIN PASSWORD 'one-connection-pw' CONNECTION LIMIT 1",
      'GRANT USAGE ON SCHEMA reporting TO one_connection',
      'GRANT SELECT ON ALL TABLES IN SCHEMA public, reporting TO one_connection',
    );
  });

  after(async () => {
    await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
    await gateway?.close();
    await target?.stop();
  });

  it('a view made before the session: renamed, cast, concatenated, in a view on a view and a materialized view; simple and extended protocol', async () => {
    const agent = await through();
    const simple = await agent.query('SELECT contact, handle, id FROM contacts ORDER BY id');
    assert.equal(simple.rows.length, 50);
    assertNoRawValue(JSON.stringify(simple.rows), 'a simple-protocol read of a view');
    assert.equal(simple.rows[0].handle, '[REDACTED]');
    assert.match(simple.rows[0].contact, /\.com$/, 'a plain rename keeps the rule\'s partial strategy');
    assert.equal(simple.rows[6].id, 7);

    const extended = await agent.query({ text: 'SELECT * FROM contacts WHERE id = $1', values: [3] });
    assertNoRawValue(JSON.stringify(extended.rows), 'an extended-protocol read of a view');
    assert.equal(extended.rows[0].id, 3);

    for (const sql of ['SELECT label FROM contact_labels WHERE id < 5', 'SELECT alias FROM aliases WHERE id < 5', 'SELECT backwards FROM reporting.handles', 'SELECT c.handle AS h FROM (SELECT * FROM contacts) c']) {
      assertNoRawValue(JSON.stringify((await agent.query(sql)).rows), sql);
      assertNoRawValue(JSON.stringify((await agent.query({ text: `${sql} LIMIT $1`, values: [5] })).rows), `${sql} (extended)`);
    }
    // Reversing must not reveal it either.
    const backwards = await agent.query('SELECT backwards FROM reporting.handles LIMIT 1');
    assert.doesNotMatch(backwards.rows[0].backwards, /kcin-terces/);

    // What does not come from a masked column stays as it is.
    const doubled = await agent.query({ text: 'SELECT twice FROM doubled WHERE id = $1', values: [21] });
    assert.deepEqual(doubled.rows, [{ twice: 42 }]);

    const recorded = recorder.statements.find((s) => s.text === 'SELECT contact, handle, id FROM contacts ORDER BY id')!;
    assert.equal(recorded.completion?.masked?.['column:handle:nickname'], 50, JSON.stringify(recorded.completion?.masked));
    assertNoRawValue(JSON.stringify(recorder.results.get(recorded.statementId)), 'the recorded result rows');
  });

  it('a view another connection makes during the session', async () => {
    const agent = await through();
    await agent.query('SELECT handle FROM contacts LIMIT 1'); // the catalog is read by now
    await onTarget('CREATE VIEW later AS SELECT nickname AS n, email AS e FROM users');
    assertNoRawValue(JSON.stringify((await agent.query('SELECT n, e FROM later')).rows), 'a view made during the session (simple)');
    assertNoRawValue(JSON.stringify((await agent.query({ text: 'SELECT n FROM later WHERE length(n) > $1', values: [0] })).rows), 'a view made during the session (extended)');
  });

  it('a view the session makes itself, committed or still inside its transaction, and one it replaces', async () => {
    const agent = await through();
    await agent.query('CREATE VIEW own_view AS SELECT nickname AS x FROM users');
    assertNoRawValue(JSON.stringify((await agent.query('SELECT x FROM own_view')).rows), 'the session\'s own view');
    assertNoRawValue(JSON.stringify((await agent.query({ text: 'SELECT x FROM own_view WHERE x <> $1', values: [''] })).rows), 'the session\'s own view (extended)');

    await agent.query('BEGIN');
    await agent.query('CREATE VIEW uncommitted AS SELECT email AS y, nickname AS z FROM users');
    assertNoRawValue(JSON.stringify((await agent.query('SELECT y, z FROM uncommitted')).rows), 'a view not yet committed');
    assertNoRawValue(JSON.stringify((await agent.query({ text: 'SELECT z FROM uncommitted WHERE z <> $1', values: [''] })).rows), 'a view not yet committed (extended)');
    await agent.query('ROLLBACK');

    // Renamed inside a transaction: no other connection knows the new name yet.
    await agent.query('BEGIN');
    await agent.query('ALTER VIEW contacts RENAME TO contacts_renamed');
    assertNoRawValue(JSON.stringify((await agent.query('SELECT handle FROM contacts_renamed')).rows), 'a view renamed in an open transaction');
    await agent.query('ROLLBACK');

    await agent.query('CREATE VIEW flip AS SELECT id::text AS v FROM users');
    assert.equal((await agent.query('SELECT v FROM flip WHERE v = $1', ['9'])).rows[0].v, '9');
    const other = await through();
    assert.equal((await other.query('SELECT v FROM flip WHERE v = $1', ['9'])).rows[0].v, '9');
    await agent.query('CREATE OR REPLACE VIEW flip AS SELECT nickname AS v FROM users');
    // Another session on the target sees the replaced view at once: the replacing session's
    // commit reads the shared catalog again, and a read in flight is waited for.
    assertNoRawValue(JSON.stringify((await other.query({ text: 'SELECT v FROM flip LIMIT $1', values: [3] })).rows), 'the replaced view, from another session');
    assertNoRawValue(JSON.stringify((await agent.query('SELECT v FROM flip')).rows), 'a view the session replaced');
  });

  it('psql: a view from before the session, one it makes, and rows fetched through psql\'s own cursor', async () => {
    const before = await gateway.psql(['-c', 'SELECT handle, contact FROM contacts ORDER BY id LIMIT 3']);
    assert.equal(before.code, 0, before.stderr);
    assert.equal(before.stdout.trim().split('\n').length, 3);
    assertNoRawValue(before.stdout, 'psql reading a view');

    const script = [
      'CREATE VIEW psql_view AS SELECT nickname AS p, email AS q FROM users;',
      'SELECT p, q FROM psql_view ORDER BY p LIMIT 2;',
      // With FETCH_COUNT psql reads through DECLARE … CURSOR and FETCH.
      '\\set FETCH_COUNT 2',
      'SELECT label FROM contact_labels ORDER BY id LIMIT 5;',
      'SELECT p FROM psql_view LIMIT 3;',
    ].join('\n');
    const during = await gateway.psql([], { input: script });
    assert.equal(during.code, 0, during.stderr);
    assert.equal(during.stdout.trim().split('\n').length, 1 + 2 + 5 + 3, during.stdout);
    assertNoRawValue(during.stdout, 'psql reading views it made and through its cursor');
  });

  it('while the target\'s views cannot be read, a column read from any relation is masked whole rather than trusted', async () => {
    const agent = new pg.Client({ host: '127.0.0.1', port: gateway.port, user: AGENT.name, password: AGENT.key, database: 'limited', ssl: { rejectUnauthorized: false } });
    await agent.connect();
    clients.push(agent);
    const viaView = await agent.query('SELECT handle, id FROM contacts ORDER BY id LIMIT 3');
    assertNoRawValue(JSON.stringify(viaView.rows), 'a view read while the catalog is unreadable');
    // Even a column no rule names: from a relation that may be a view of unknown shape, it may be anything.
    const { rows } = await agent.query({ text: 'SELECT twice FROM doubled WHERE id = $1', values: [21] });
    assert.notDeepEqual(rows, [{ twice: 42 }]);
    assert.deepEqual((await agent.query('SELECT 6 * 7 AS answer')).rows, [{ answer: 42 }], 'what reads no relation is untouched');
  });
});
