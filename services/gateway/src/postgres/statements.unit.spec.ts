import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { loadSqlParser, splitStatements } from './statements.js';

describe('splitting a simple Query into statements', () => {
  before(() => loadSqlParser());

  it('gives one statement, with its fingerprint and byte span, for the common single-statement query', () => {
    const [one, ...rest] = splitStatements('  SELECT abalance FROM pgbench_accounts WHERE aid = 42;  ');
    assert.deepEqual(rest, []);
    assert.equal(one?.text, 'SELECT abalance FROM pgbench_accounts WHERE aid = 42');
    assert.equal(one?.parsed, true);
    assert.equal(one?.fingerprint, splitStatements('SELECT abalance FROM pgbench_accounts WHERE aid = 7; SELECT 1')[0]?.fingerprint);
    assert.equal(one?.start, 2);
  });

  it('splits on semicolons PostgreSQL sees, not those in strings, comments or dollar quotes', () => {
    assert.deepEqual(splitStatements("SELECT ';'; SELECT 2").map((s) => s.text), ["SELECT ';'", 'SELECT 2']);
    assert.deepEqual(splitStatements('SELECT 1 /* ; */; DELETE FROM t').map((s) => s.text), ['SELECT 1 /* ; */', 'DELETE FROM t']);
    assert.deepEqual(splitStatements('SELECT 1 -- ;\n; DROP TABLE t').map((s) => s.text), ['SELECT 1 -- ;', 'DROP TABLE t']);
    assert.deepEqual(splitStatements('DO $$ BEGIN PERFORM 1; END $$').length, 1);
  });

  it('keeps text the parser cannot read as one opaque statement, however it is shaped', () => {
    for (const text of ['SELECT 1 SELECT 2', 'SELEC 1', 'SELECT (;']) {
      const statements = splitStatements(text);
      assert.equal(statements.length, 1, text);
      assert.equal(statements[0]?.parsed, false, text);
    }
    assert.deepEqual(splitStatements('  ;  '), []);
  });
});
