import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { randomBytes } from 'node:crypto';
import { alignLineage, compileProfile } from './compiled-profile.js';
import { analyzeOutputLineage, analyzeStatementLineage, loadSqlParser, MAX_VIEW_DEPTH, namedQueryLineage, viewChange, type OutputColumnLineage, type ViewDefinitions } from './lineage.js';
import { PgType } from './result-plan.js';

before(async () => {
  await loadSqlParser();
});

/** Each output column as "name: table.column,… (plain|derived)". */
function lineage(sql: string, views?: ViewDefinitions): string[] | undefined {
  return analyzeOutputLineage(sql, views)?.map(show);
}

/** Views by `schema.name` (and by bare name, through every schema), as a catalog reading would give them. */
function catalog(views: Record<string, string>): ViewDefinitions {
  return {
    definitions(name, schema) {
      if (schema !== undefined) return views[`${schema}.${name}`] !== undefined ? [views[`${schema}.${name}`]!] : [];
      return Object.entries(views)
        .filter(([key]) => key.slice(key.indexOf('.') + 1) === name)
        .map(([, definition]) => definition);
    },
  };
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

describe('lineage through views', () => {
  // Definitions as pg_get_viewdef renders them: star expanded, columns qualified.
  const views = catalog({
    'public.contacts': ' SELECT users.email AS contact, users.id FROM users;',
    'public.contact_cards': " SELECT (contacts.contact)::character varying AS card, (contacts.contact || ' <'::text) || contacts.id AS label, contacts.id FROM contacts;",
    'public.mail_stats': ' SELECT count(*) AS n, max(users.email) AS last_email FROM users;',
    'reporting.people_view': ' SELECT p.ssn AS tax_id, p.name FROM people p;',
    'public.broken': 'SELEC garbage FROM',
  });

  it('a view column derives from the base column it renames', () => {
    assert.deepEqual(lineage('SELECT contact FROM contacts', views), ['contact: contacts.contact,users.email (plain)']);
    assert.deepEqual(lineage('SELECT c.contact AS x, c.id FROM contacts c', views), ['x: contacts.contact,users.email (plain)', 'id: contacts.id,users.id (plain)']);
  });

  it('a star over a view expands into its columns', () => {
    assert.deepEqual(lineage('SELECT * FROM contacts', views), ['contact: contacts.contact,users.email (plain)', 'id: contacts.id,users.id (plain)']);
  });

  it('views on views, renaming, casting and concatenating, reach the base table', () => {
    assert.deepEqual(lineage('SELECT card, label, upper(card) AS shout FROM contact_cards', views), [
      'card: contact_cards.card,contacts.contact,users.email (derived)',
      'label: contact_cards.label,contacts.contact,users.email,contacts.id,users.id (derived)',
      'shout: contact_cards.card,contacts.contact,users.email (derived)',
    ]);
  });

  it('schema-qualified views, and a view named in a subquery, a CTE, a join and a whole-row reference', () => {
    assert.deepEqual(lineage('SELECT tax_id FROM reporting.people_view', views), ['tax_id: people_view.tax_id,people.ssn (plain)']);
    assert.deepEqual(lineage('SELECT x FROM (SELECT contact AS x FROM contacts) s', views), ['x: contacts.contact,users.email (plain)']);
    assert.deepEqual(lineage('WITH w AS (SELECT * FROM contacts) SELECT contact FROM w', views), ['contact: contacts.contact,users.email (plain)']);
    assert.deepEqual(lineage('SELECT o.total, c.contact FROM orders o JOIN contacts c ON c.id = o.customer_id', views), ['total: orders.total (plain)', 'contact: contacts.contact,users.email (plain)']);
    assert.deepEqual(lineage('SELECT to_jsonb(c) AS j FROM contacts c', views), ['j: contacts.*,users.email,users.id (derived)']);
  });

  it('a materialized view, defined by the statement that created it', () => {
    const matviews = catalog({ 'public.emails_mv': 'CREATE MATERIALIZED VIEW emails_mv (addr) AS SELECT email FROM users WITH NO DATA' });
    assert.deepEqual(lineage('SELECT addr FROM emails_mv', matviews), ['addr: emails_mv.addr,users.email (plain)']);
  });

  it('a view defined by its CREATE VIEW text over a star: followed through the star, and whole when it renames the star\'s columns', () => {
    const own = catalog({ 'public.everyone': 'CREATE VIEW everyone AS SELECT * FROM users', 'public.renamed': 'CREATE VIEW renamed (a, b) AS SELECT * FROM users' });
    assert.deepEqual(lineage('SELECT email FROM everyone', own), ['email: everyone.email,users.email (plain)']);
    assert.deepEqual(lineage('SELECT * FROM everyone', own), ['*users']);
    assert.deepEqual(lineage('SELECT a FROM renamed', own), ['a: renamed.a,users.* (derived)']);
  });

  it('an aggregate over a view column stays derived from it; count reveals nothing', () => {
    assert.deepEqual(lineage('SELECT n, last_email FROM mail_stats', views), ['n: mail_stats.n (derived)', 'last_email: mail_stats.last_email,users.email (derived)']);
  });

  it('a view whose definition does not parse, or that nests too deep, derives from an unknown column', () => {
    assert.deepEqual(lineage('SELECT a FROM broken', views), ['a: broken.a,* (derived)']);
    assert.deepEqual(lineage('SELECT * FROM broken', views), ['*broken']);
    assert.deepEqual(analyzeOutputLineage('SELECT * FROM broken', views)?.[0]?.sources, [{ column: '*' }]);
    const chain: Record<string, string> = { 'public.v0': 'SELECT email AS c FROM users' };
    for (let i = 1; i <= MAX_VIEW_DEPTH + 1; i += 1) chain[`public.v${i}`] = `SELECT c FROM v${i - 1}`;
    assert.deepEqual(lineage(`SELECT c FROM v${MAX_VIEW_DEPTH - 1}`, catalog(chain)), [`c: v${MAX_VIEW_DEPTH - 1}.c,${Array.from({ length: MAX_VIEW_DEPTH - 1 }, (_, i) => `v${MAX_VIEW_DEPTH - 2 - i}.c`).join(',')},users.email (plain)`]);
    assert.ok(analyzeOutputLineage(`SELECT c FROM v${MAX_VIEW_DEPTH + 1}`, catalog(chain))?.[0]?.sources.some((s) => s.column === '*' && s.table === undefined));
    // Stale definitions naming each other: cut off, never a loop.
    assert.ok(analyzeOutputLineage('SELECT c FROM a', catalog({ 'public.a': 'SELECT c FROM b', 'public.b': 'SELECT c FROM a' }))?.[0]?.sources.some((s) => s.column === '*'));
  });

  it('many definitions of one name, each naming that name again, cost one analysis each', () => {
    const definitions = Array.from({ length: 40 }, (_, i) => `CREATE OR REPLACE VIEW loop AS SELECT c${i} AS c FROM loop`);
    const hostile: ViewDefinitions = { definitions: (name) => (name === 'loop' ? definitions : []) };
    const started = performance.now();
    const analysed = analyzeOutputLineage('SELECT c FROM loop', hostile);
    assert.ok(performance.now() - started < 2000, `took ${performance.now() - started} ms`);
    assert.ok(analysed?.[0]?.sources.some((s) => s.column === '*' && s.table === undefined));
  });

  it('a view name in several schemas counts as each; when their columns differ, a column may be any', () => {
    const twice = catalog({ 'a.v': 'SELECT email AS x FROM users', 'b.v': 'SELECT ssn AS x FROM people' });
    assert.deepEqual(lineage('SELECT x FROM v', twice), ['x: v.x,users.email,people.ssn (plain)']);
    const differ = catalog({ 'a.v': 'SELECT email AS x FROM users', 'b.v': 'SELECT ssn AS y, 1 AS z FROM people' });
    assert.deepEqual(lineage('SELECT x FROM v', differ), ['x: v.x,users.email,people.ssn (derived)']);
  });

  it('a statement that cannot be followed reads what its views read', () => {
    const opaque = analyzeStatementLineage('SELECT contact FROM contacts TABLESAMPLE SYSTEM (50)', views);
    assert.equal(opaque.kind, 'opaque');
    assert.ok(opaque.kind === 'opaque' && opaque.reads.some((r) => r.table === 'users' && r.column === 'email'));
  });

  it('cursors and prepared statements over a view', () => {
    const named = namedQueryLineage('DECLARE c CURSOR FOR SELECT contact AS k FROM contacts', views);
    assert.equal(named?.lineage.kind, 'columns');
    assert.deepEqual(named?.lineage.kind === 'columns' ? named.lineage.columns.map(show) : [], ['k: contacts.contact,users.email (plain)']);
  });

  it('without definitions a view is read as a table, as before', () => {
    assert.deepEqual(lineage('SELECT contact FROM contacts'), ['contact: contacts.contact (plain)']);
  });

  it('a profile masks a renamed view column by its base column rule, and a column of an unreadable view whole', () => {
    const profile = compileProfile({ name: 'p', version: '1', rules: [{ name: 'email', column: 'users.email', strategy: 'partial', keepLast: 4 }] }, { hashKey: randomBytes(32) });
    const column = (name: string) => ({ name, tableOid: 77, columnId: 1, typeOid: PgType.text, format: 0 as const });
    const plan = (sql: string, columns: string[]) => profile.planResult(columns.map(column), analyzeStatementLineage(sql, views));
    const masked = (sql: string, columns: string[], row: string[]): (string | null)[] => {
      const p = plan(sql, columns);
      assert.ok(!('refused' in p), sql);
      return readRow(p.maskDataRow(dataRow(row)));
    };
    // A plain rename keeps the rule's own strategy: partial keeps the last 4 characters.
    const [partial, plainId] = masked('SELECT contact, id FROM contacts', ['contact', 'id'], ['ann@example.com', '1']);
    assert.doesNotMatch(partial!, /ann@/);
    assert.match(partial!, /\.com$/);
    assert.equal(plainId, '1');
    const [card] = masked('SELECT card FROM contact_cards', ['card'], ['ann@example.com']);
    assert.doesNotMatch(card!, /\.com/, 'a cast of a masked column is masked whole, not partially');
    const [unknown, id] = masked('SELECT a, b FROM broken', ['a', 'b'], ['anything', '2']);
    assert.doesNotMatch(unknown!, /anything/);
    assert.doesNotMatch(id!, /^2$/);
    assert.deepEqual(masked('SELECT id FROM orders', ['id'], ['3']), ['3']);
    const refused = plan('SELECT contact FROM contacts TABLESAMPLE SYSTEM (50)', ['contact']);
    assert.ok('refused' in refused);
  });

  it('viewChange tells view definitions from other changes to views', () => {
    assert.deepEqual(viewChange('CREATE OR REPLACE TEMP VIEW s.v (a) AS SELECT email FROM users'), { kind: 'define', name: 'v', schema: 's' });
    assert.deepEqual(viewChange('CREATE MATERIALIZED VIEW "Mv" AS SELECT 1'), { kind: 'define', name: 'Mv', schema: undefined });
    assert.deepEqual(viewChange('ALTER VIEW s.v RENAME TO w'), { kind: 'rename', name: 'v', schema: 's', newName: 'w' });
    assert.deepEqual(viewChange('ALTER MATERIALIZED VIEW m RENAME TO n'), { kind: 'rename', name: 'm', schema: undefined, newName: 'n' });
    for (const sql of ['DROP VIEW v', 'DROP MATERIALIZED VIEW IF EXISTS m', 'ALTER VIEW v RENAME COLUMN a TO b', 'ALTER VIEW v SET SCHEMA s', 'ALTER VIEW v ALTER COLUMN a SET DEFAULT 1']) {
      assert.deepEqual(viewChange(sql), { kind: 'change' }, sql);
    }
    assert.deepEqual(viewChange('/* made by hand */ -- really\n  create temporary view t as select 1'), { kind: 'define', name: 't', schema: undefined });
    assert.equal(viewChange('SELECT * FROM review_queue'), undefined);
    assert.equal(viewChange("INSERT INTO notes VALUES ('CREATE VIEW v AS SELECT 1')"), undefined);
    assert.equal(viewChange("SELECT 'view'"), undefined);
    assert.equal(viewChange('DROP TABLE views'), undefined);
  });
});

/** A DataRow message of text values. */
function dataRow(values: readonly string[]): Buffer {
  const parts = values.map((v) => {
    const bytes = Buffer.from(v, 'utf8');
    const header = Buffer.alloc(4);
    header.writeInt32BE(bytes.length);
    return Buffer.concat([header, bytes]);
  });
  const count = Buffer.alloc(2);
  count.writeInt16BE(values.length);
  const body = Buffer.concat([count, ...parts]);
  const head = Buffer.alloc(5);
  head[0] = 0x44;
  head.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([head, body]);
}

function readRow(message: Buffer): (string | null)[] {
  const count = message.readInt16BE(5);
  const out: (string | null)[] = [];
  let offset = 7;
  for (let i = 0; i < count; i += 1) {
    const length = message.readInt32BE(offset);
    out.push(length < 0 ? null : message.toString('utf8', offset + 4, offset + 4 + length));
    offset += 4 + Math.max(length, 0);
  }
  return out;
}
