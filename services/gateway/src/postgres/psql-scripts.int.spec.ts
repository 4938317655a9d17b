import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pollUntil, startPostgres } from '@tracegate/test-harness';
import { startGatewayFixture, type GatewayFixture } from './testing/gateway-fixture.js';

// psql scripts (-f) through the gateway, the way a person or an agent runs them. psql 15 has no
// \bind (psql 16 added it): Bind is covered by node-postgres and by the raw extended-protocol
// sequences of the differential test.

describe('psql scripts through the gateway', () => {
  let target: Awaited<ReturnType<typeof startPostgres>>;
  let gateway: GatewayFixture;
  let folder: string;

  const script = (name: string, text: string) => {
    const file = path.join(folder, name);
    writeFileSync(file, text);
    return file;
  };
  const onTarget = async <T extends Record<string, unknown>>(sql: string): Promise<T[]> => {
    const c = await gateway.direct();
    try {
      return (await c.query<T>(sql)).rows;
    } finally {
      await c.end();
    }
  };

  before(async () => {
    target = await startPostgres();
    gateway = await startGatewayFixture(target);
    folder = mkdtempSync(path.join(tmpdir(), 'gateway-psql-'));
  });

  after(async () => {
    await gateway?.close();
    await target?.stop();
    rmSync(folder, { recursive: true, force: true });
  });

  it('runs a script with multi-statement queries and \\copy in both directions; the data lands on the target', async () => {
    const exported = path.join(folder, 'exported.tsv');
    const file = script(
      'copy.sql',
      [
        'CREATE TABLE items (id int PRIMARY KEY, label text);',
        "INSERT INTO items VALUES (1, 'one'); INSERT INTO items VALUES (2, 'two');",
        // \; sends both statements in one Query message.
        "SELECT count(*) FROM items \\; SELECT string_agg(label, ',' ORDER BY id) FROM items;",
        '\\copy items FROM stdin',
        '3\tthree',
        '4\tfour with\\ttab',
        '\\.',
        '\\copy items TO stdout',
        `\\copy (SELECT id, upper(label) FROM items WHERE id > 2 ORDER BY id) TO '${exported}'`,
        '',
      ].join('\n'),
    );
    const result = await gateway.psql(['-q', '-f', file]);
    assert.equal(result.stderr, '');
    assert.equal(result.code, 0);
    assert.equal(result.stdout, ['2', 'one,two', '1\tone', '2\ttwo', '3\tthree', '4\tfour with\\ttab', ''].join('\n'));
    assert.equal(readFileSync(exported, 'utf8'), '3\tTHREE\n4\tFOUR WITH\\tTAB\n');
    assert.deepEqual(await onTarget('SELECT id, label FROM items ORDER BY id'), [
      { id: 1, label: 'one' },
      { id: 2, label: 'two' },
      { id: 3, label: 'three' },
      { id: 4, label: 'four with\ttab' },
    ]);
  });

  it('fails the rest of a transaction with 25P02 after an error until ROLLBACK, and nothing of it is committed', async () => {
    const file = script(
      'transaction.sql',
      [
        '\\set VERBOSITY verbose',
        'CREATE TABLE ledger (id int);',
        'BEGIN;',
        'INSERT INTO ledger VALUES (1);',
        'SELECT 1/0;',
        'INSERT INTO ledger VALUES (2);',
        "SELECT 'still aborted';",
        'ROLLBACK;',
        "SELECT 'after rollback', count(*) FROM ledger;",
        '',
      ].join('\n'),
    );
    const result = await gateway.psql(['-q', '-f', file]);
    const errors = [...result.stderr.matchAll(/ERROR: {2}([0-9A-Z]{5}):/g)].map((m) => m[1]);
    assert.deepEqual(errors, ['22012', '25P02', '25P02'], result.stderr);
    assert.equal(result.stdout, 'after rollback|0\n');
    assert.deepEqual(await onTarget('SELECT count(*)::int AS n FROM ledger'), [{ n: 0 }]);
  });

  it('ends a \\copy FROM stdin whose data the target rejects with the target\'s error; none of its rows are kept and the session goes on', async () => {
    const file = script(
      'bad-copy.sql',
      [
        'CREATE TABLE readings (id int PRIMARY KEY, value numeric);',
        '\\copy readings FROM stdin',
        '1\t1.5',
        'two\t2.5',
        '3\t3.5',
        '\\.',
        "SELECT 'after copy', count(*) FROM readings;",
        '',
      ].join('\n'),
    );
    const result = await gateway.psql(['-q', '-f', file]);
    assert.match(result.stderr, /ERROR: {2}invalid input syntax for type integer: "two"/);
    assert.equal(result.stdout, 'after copy|0\n');
    assert.deepEqual(await onTarget('SELECT count(*)::int AS n FROM readings'), [{ n: 0 }]);
  });

  it('cancels a running statement when psql is interrupted (its CancelRequest reaches the target backend)', async () => {
    const child = spawn('psql', ['-X', '-At', gateway.gatewayUrl(), '-c', 'SELECT pg_sleep(30)'], { env: { ...process.env, PGCONNECT_TIMEOUT: '10' } });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const direct = await gateway.direct();
    try {
      await pollUntil(async () => (await direct.query("SELECT 1 FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(30)' AND state = 'active'")).rowCount === 1, { description: 'the sleep to run on the target' });
    } finally {
      await direct.end();
    }
    child.kill('SIGINT');
    assert.equal(await exited, 1);
    assert.match(stderr, /canceling statement due to user request/);
  });
});
