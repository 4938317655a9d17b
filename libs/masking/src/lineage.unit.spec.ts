import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { alignLineage } from './compiled-profile.js';
import { analyzeOutputLineage, analyzeStatementLineage, loadSqlParser, type OutputColumnLineage } from './lineage.js';

before(async () => {
  await loadSqlParser();
});

/** Each output column as "name: table.column,… (plain|derived)". */
function lineage(sql: string): string[] | undefined {
  return analyzeOutputLineage(sql)?.map(show);
}

function show(c: OutputColumnLineage): string {
  if (c.star) return `*${c.star.table ?? ''}`;
  const sources = c.sources.map((s) => `${s.table ? `${s.table}.` : ''}${s.column}`).join(',');
  return `${c.name}: ${sources} (${c.derived ? 'derived' : 'plain'})`;
}

describe('analyzeOutputLineage', () => {
  it('an alias keeps a plain reference', () => {
    assert.deepEqual(lineage('SELECT email AS e, id FROM users'), ['e: users.email (plain)', 'id: users.id (plain)']);
  });
  it('casts, concatenation, encode and reverse derive from their source', () => {
    assert.deepEqual(lineage("SELECT email::text, email || '!' AS bang, encode(convert_to(ssn, 'UTF8'), 'hex') AS hex, reverse(u.card) r FROM users u"), [
      'email: users.email (derived)',
      'bang: users.email (derived)',
      'hex: users.ssn (derived)',
      'r: users.card (derived)',
    ]);
  });
  it('qualified columns resolve through table aliases in joins', () => {
    assert.deepEqual(lineage('SELECT c.email, o.total FROM customers c JOIN orders o ON o.customer_id = c.id'), ['email: customers.email (plain)', 'total: orders.total (plain)']);
  });
  it('an unqualified column over several tables may come from any of them', () => {
    assert.deepEqual(lineage('SELECT email FROM customers, orders'), ['email: customers.email,orders.email (plain)']);
  });
  it('subqueries and renamed subquery columns', () => {
    assert.deepEqual(lineage('SELECT x FROM (SELECT email AS x FROM users) s'), ['x: users.email (plain)']);
    assert.deepEqual(lineage('SELECT y FROM (SELECT email FROM users) s(y)'), ['y: users.email (plain)']);
    assert.deepEqual(lineage('SELECT (SELECT max(ssn) FROM people p WHERE p.id = u.id) AS s FROM users u'), ['s: people.ssn (derived)']);
  });
  it('CTEs, recursive ones too', () => {
    assert.deepEqual(lineage('WITH c AS (SELECT ssn AS s FROM people) SELECT s FROM c'), ['s: people.ssn (plain)']);
    assert.deepEqual(lineage('WITH RECURSIVE t(n) AS (SELECT ssn FROM people UNION ALL SELECT n FROM t) SELECT n FROM t'), ['n: people.ssn (plain)']);
  });
  it('set operations merge their branches column by column', () => {
    assert.deepEqual(lineage('SELECT name, id FROM staff UNION SELECT ssn, id FROM people'), ['name: staff.name,people.ssn (plain)', 'id: staff.id,people.id (plain)']);
  });
  it('stars over tables stay stars, over subqueries they expand', () => {
    assert.deepEqual(lineage('SELECT * FROM users'), ['*users']);
    assert.deepEqual(lineage('SELECT s.* FROM (SELECT email AS e FROM users) s'), ['e: users.email (plain)']);
  });
  it('whole-row references carry every column of their table', () => {
    assert.deepEqual(lineage('SELECT row_to_json(u) AS j FROM users u'), ['j: users.u,users.* (derived)']);
  });
  it('RETURNING lists of writes', () => {
    assert.deepEqual(lineage('UPDATE users SET name = $1 WHERE id = 1 RETURNING email AS e'), ['e: users.email (plain)']);
  });
  it('no lineage for statements without rows or that do not parse', () => {
    assert.equal(lineage('CREATE TABLE t (a int)'), undefined);
    assert.equal(lineage('SELEC nonsense'), undefined);
    assert.equal(lineage('SELECT 1; SELECT 2'), undefined);
  });
});

describe('analyzeStatementLineage', () => {
  it('tells statements without rows from queries it cannot follow', () => {
    assert.equal(analyzeStatementLineage('SET search_path = x').kind, 'no-rows');
    assert.equal(analyzeStatementLineage('EXPLAIN SELECT ssn FROM people').kind, 'no-rows');
    assert.equal(analyzeStatementLineage('UPDATE people SET ssn = NULL').kind, 'no-rows');
    const opaque = analyzeStatementLineage('SELECT ssn AS s FROM people TABLESAMPLE SYSTEM (10)');
    assert.equal(opaque.kind, 'opaque');
    assert.ok(opaque.kind === 'opaque' && opaque.reads.some((r) => r.column === 'ssn'));
    assert.equal(analyzeStatementLineage('SELECT 1; SELECT ssn FROM people').kind, 'opaque');
  });

  it('never throws, whatever the query looks like', () => {
    const statements = [
      'SELECT (u).email FROM users u',
      'SELECT ARRAY[email, name] FROM users',
      'TABLE users',
      'SELECT DISTINCT ON (a) * FROM t ORDER BY a',
      'SELECT * FROM ROWS FROM (generate_series(1, 3), unnest(ARRAY[1])) AS r(a, b)',
      'SELECT * FROM t1 NATURAL JOIN t2',
      'SELECT x.* FROM f() x',
      'WITH x AS MATERIALIZED (SELECT email FROM users) SELECT * FROM x FOR UPDATE',
      'INSERT INTO t SELECT * FROM users RETURNING *',
      'MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN UPDATE SET a = s.a RETURNING t.*',
      'SELECT $1::text, $2',
      "SELECT * FROM JSON_TABLE('[]'::jsonb, '$[*]' COLUMNS (a int PATH '$.a')) jt",
      'SELECT email FROM users GROUP BY ROLLUP (email)',
      'SELECT count(*) FILTER (WHERE ssn IS NULL) FROM people',
      'SELECT * FROM (VALUES (1, 2)) v(a, b) CROSS JOIN LATERAL (SELECT v.a + 1) l',
      'SELECT xmlelement(name x, email) FROM users',
      'VALUES (1), (2)',
      'SELECT',
    ];
    for (const sql of statements) assert.doesNotThrow(() => analyzeStatementLineage(sql), sql);
  });
});

describe('alignLineage', () => {
  const col = (name: string, tableOid: number) => ({ name, tableOid, columnId: 1, typeOid: 25, format: 0 as const });
  it('one star takes what the other entries leave', () => {
    const aligned = alignLineage(analyzeOutputLineage('SELECT 1 AS a, *, 2 AS b FROM users')!, [col('a', 0), col('id', 5), col('email', 5), col('b', 0)]);
    assert.deepEqual(aligned?.map((c) => c && show(c)), ['a:  (derived)', 'id: users.id (plain)', 'email: users.email (plain)', 'b:  (derived)']);
  });
  it('several stars split by table OID runs', () => {
    const aligned = alignLineage(analyzeOutputLineage('SELECT * FROM users u JOIN orders o ON true')!, [col('id', 5), col('email', 5), col('id', 6), col('total', 6)]);
    // Which table each run is, the runs cannot say: each column counts as any table's.
    assert.deepEqual(aligned?.map((c) => c && show(c)), ['id: id (plain)', 'email: email (plain)', 'id: id (plain)', 'total: total (plain)']);
  });
  it('gives up (undefined) when the columns cannot be lined up', () => {
    assert.equal(alignLineage(analyzeOutputLineage('SELECT a, b FROM t')!, [col('a', 1)]), undefined);
  });
});
