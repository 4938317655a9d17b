import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it, mock } from 'node:test';
import { loadSqlParser, type SourceColumn } from '@tracegate/masking-engine';
import { createLogger } from '@tracegate/runtime';
import type { StatementLineage } from './ports.js';
import type { TargetEndpoint } from './upstream-login.js';
import { SessionViews, TargetViewCatalog, type CatalogRelation } from './view-catalog.js';

// The catalog's caching and reading rules, with the read itself replaced: what is read when, and
// what a session sees meanwhile. The read over a real side connection is covered by
// view-masking.int.spec.ts.

const ENDPOINT: TargetEndpoint = { name: 'billing', host: '127.0.0.1', port: 1, database: 'billing', user: 'u', password: 'p', tls: 'disable' };

/** The sources of each output column, as "table.column" lists. */
function sources(lineage: StatementLineage): string[][] {
  assert.equal(lineage.kind, 'columns');
  return lineage.kind === 'columns' ? lineage.columns.map((c) => c.sources.map((s: SourceColumn) => `${s.table ?? ''}.${s.column}`)) : [];
}

describe('TargetViewCatalog and SessionViews', () => {
  let relations: CatalogRelation[];
  let reads: number;
  let failing: boolean;
  let catalog: TargetViewCatalog;
  const session = () => new SessionViews(catalog, 'billing', ENDPOINT);

  before(async () => {
    await loadSqlParser();
  });

  beforeEach(() => {
    mock.timers.reset();
    mock.timers.enable({ apis: ['Date'], now: 1_000_000 });
    reads = 0;
    failing = false;
    relations = [
      { schema: 'public', name: 'users', definition: undefined },
      { schema: 'public', name: 'contacts', definition: ' SELECT users.email AS contact FROM users;' },
    ];
    catalog = new TargetViewCatalog({
      timeoutMs: 1000,
      maxMessageLength: 1 << 20,
      logger: createLogger('view-catalog-test', 'silent'),
      read: async () => {
        reads += 1;
        if (failing) throw new Error('too many connections');
        return [...relations];
      },
    });
  });

  after(() => mock.timers.reset());

  it('reads a target once for all its sessions, and follows a view to its base column', async () => {
    const [a, b] = [session(), session()];
    assert.deepEqual(sources(await a.lineage('SELECT contact FROM contacts')), [['contacts.contact', 'users.email']]);
    assert.deepEqual(sources(await b.lineage('SELECT contact AS c FROM contacts')), [['contacts.contact', 'users.email']]);
    await a.lineage('SELECT email FROM users');
    assert.equal(reads, 1);
  });

  it('reads again for a relation it does not know, and not again for one still missing', async () => {
    const views = session();
    await views.lineage('SELECT 1 FROM users');
    relations.push({ schema: 'public', name: 'later', definition: ' SELECT users.email AS e FROM users;' });
    assert.deepEqual(sources(await views.lineage('SELECT e FROM later')), [['later.e', 'users.email']]);
    assert.equal(reads, 2);
    await views.lineage('SELECT x FROM nowhere');
    await views.lineage('SELECT x FROM nowhere');
    await views.lineage('SELECT y FROM nowhere');
    assert.equal(reads, 3, 'a missing relation is looked for once');
    mock.timers.tick(11_000);
    await views.lineage('SELECT z FROM nowhere');
    assert.equal(reads, 4, '… and again once its absence is old');
  });

  it('temporary views by pg_temp, and writes without RETURNING not analysed at all', async () => {
    relations.push({ schema: 'pg_temp_3', name: 'scratch', definition: ' SELECT users.email AS s FROM users;' });
    const views = session();
    assert.deepEqual(sources(await views.lineage('SELECT s FROM pg_temp.scratch')), [['scratch.s', 'users.email']]);
    assert.deepEqual(sources(await views.lineage('SELECT s FROM scratch')), [['scratch.s', 'users.email']]);
    assert.deepEqual(await views.lineage("INSERT INTO nowhere VALUES ('x')"), { kind: 'no-rows' });
    assert.deepEqual(sources(await views.lineage('DELETE FROM users RETURNING email')), [['users.email']]);
    assert.equal(reads, 1);
  });

  it('a session that defines more views than it keeps sees every relation as a view of unknown shape', async () => {
    const views = session();
    for (let i = 0; i <= 1000; i += 1) views.noteStatement(`CREATE VIEW v${i} AS SELECT ${i} AS n`);
    assert.deepEqual(sources(await views.lineage('SELECT id FROM users')), [['users.id', '.*']]);
    assert.deepEqual(sources(await session().lineage('SELECT id FROM users')), [['users.id']], 'other sessions are not affected');
  });

  it('callers during a read share the next one', async () => {
    await session().lineage('SELECT 1');
    await Promise.all([catalog.refresh('billing', ENDPOINT), catalog.refresh('billing', ENDPOINT), catalog.refresh('billing', ENDPOINT), catalog.refresh('billing', ENDPOINT)]);
    assert.equal(reads, 3, 'one read, then one more shared by everyone who asked while it ran');
  });

  it('a reading serves 30 s: a view another session replaced is seen after that', async () => {
    const views = session();
    await views.lineage('SELECT contact FROM contacts');
    relations[1] = { schema: 'public', name: 'contacts', definition: ' SELECT users.ssn AS contact FROM users;' };
    mock.timers.tick(31_000);
    assert.deepEqual(sources(await views.lineage('SELECT contact FROM contacts')), [['contacts.contact', 'users.ssn']]);
    assert.equal(reads, 2);
  });

  it('a view the session defines counts at once, before any reading has it; once its change is committed, the catalog is read again', async () => {
    const views = session();
    await views.lineage('SELECT 1 FROM users');
    views.noteStatement('CREATE VIEW mine (m) AS SELECT email FROM users');
    assert.deepEqual(sources(await views.lineage('SELECT m FROM mine')), [['mine.m', 'users.email']]);
    assert.equal(reads, 1, 'the name is the session\'s own: no read for it');
    views.noteStatement('DROP VIEW contacts');
    views.changed();
    await views.lineage('SELECT 1 FROM users');
    assert.equal(reads, 2);
    // Renamed inside a transaction not yet committed: the reading still has the old name only.
    views.noteStatement('ALTER VIEW contacts RENAME TO people');
    assert.deepEqual(sources(await views.lineage('SELECT contact FROM people')), [['people.contact', 'users.email']]);
    views.noteStatement('ALTER VIEW people RENAME TO contacts');
    assert.ok(sources(await views.lineage('SELECT contact FROM contacts'))[0]!.includes('users.email'), 'renamed back and forth: still followed');
  });

  it('while the catalog cannot be read, whatever comes from a relation derives from an unknown column, and the read is retried later', async () => {
    failing = true;
    const views = session();
    assert.deepEqual(sources(await views.lineage('SELECT id FROM users')), [['users.id', '.*']]);
    await views.lineage('SELECT id FROM users WHERE id > 1');
    assert.equal(reads, 1);
    failing = false;
    mock.timers.tick(6_000);
    assert.deepEqual(sources(await views.lineage('SELECT id FROM users WHERE id > 2')), [['users.id']]);
    assert.equal(reads, 2);
  });
});
