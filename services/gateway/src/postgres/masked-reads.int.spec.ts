import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type pg from 'pg';
import { compileProfile, DEFAULT_PROFILE, type CompiledMaskingProfile } from '@tracegate/masking-engine';
import { startPostgres } from '@tracegate/test-harness';
import type { MaskingProfiles, StatementContext, StatementDecision, StatementJudge } from './ports.js';
import { AGENT, MemoryRecorder, startGatewayFixture, type GatewayFixture } from './testing/gateway-fixture.js';
import { RawClient, typesOf } from './testing/raw-client.js';

// 100,000 rows with personal data and secrets in several columns, read through the gateway with
// the real masking engine and its built-in `default` profile: simple and extended protocol, text
// and binary. No raw value may reach the client or any recorded event.

const ROWS = 100_000;
/** Each pattern matches a raw value of the table, never its masked form. */
const RAW = {
  email: /user\d+@example\.com/,
  phone: /\+1415555\d{4}/,
  card: /4111[ -]?1111[ -]?1111/,
  ssn: /\b(?:123|234)-45-\d{4}\b/,
  awsKey: /AKIA[0-9A-Z]{16}/,
  urlPassword: /hunter2-\d+/,
};

function assertNoRawValue(text: string, where: string): void {
  for (const [kind, pattern] of Object.entries(RAW)) {
    const found = pattern.exec(text);
    assert.equal(found, null, `a raw ${kind} (${found?.[0]}) reached ${where}`);
  }
}

/** The default profile, except for statements about the cursor `quiet` and the prepared `lookup`: column rules only, no detectors. */
class DefaultProfileJudge implements StatementJudge {
  async decide(statement: StatementContext): Promise<StatementDecision> {
    const profile = /\b(quiet|lookup)\b/.test(statement.text) ? 'columns-only' : 'default';
    return { effect: 'allow', rule: 'agents-read', reason: '', policyVersion: 'v1', maskingProfile: profile };
  }
}

describe('masked reads of a 100,000-row table with the masking engine', () => {
  let target: Awaited<ReturnType<typeof startPostgres>>;
  let gateway: GatewayFixture;
  const recorder = new MemoryRecorder();
  const profile: CompiledMaskingProfile = compileProfile(DEFAULT_PROFILE, { hashKey: randomBytes(32) });
  // Without detectors, only the lineage can tell that `harmless` is the ssn column.
  const columnsOnly = compileProfile(
    { name: 'columns-only', version: '1', rules: [{ name: 'ssn', column: 'ssn', strategy: 'redact' }, { name: 'email', column: 'email', strategy: 'redact' }, { name: 'card', column: 'card_number', strategy: 'redact' }] },
    { hashKey: randomBytes(32) },
  );
  const profiles: MaskingProfiles = { profile: (name) => (name === 'default' ? profile : name === 'columns-only' ? columnsOnly : undefined) };
  const clients: pg.Client[] = [];
  const through = async () => {
    const c = await gateway.client();
    clients.push(c);
    return c;
  };

  before(async () => {
    target = await startPostgres();
    gateway = await startGatewayFixture(target, { recorder, judge: new DefaultProfileJudge(), masking: profiles, recordedRows: 500 });
    const setup = await gateway.direct();
    await setup.query('CREATE TABLE customers (id int PRIMARY KEY, email text UNIQUE, phone text, card_number text, ssn text, notes text, profile jsonb)');
    await setup.query(`
      INSERT INTO customers
      SELECT g,
             'user' || g || '@example.com',
             '+1415555' || lpad((g % 10000)::text, 4, '0'),
             '4111 1111 1111 ' || lpad((g % 10000)::text, 4, '0'),
             CASE WHEN g % 2 = 0 THEN '123' ELSE '234' END || '-45-' || lpad((g % 10000 + 1)::text, 4, '0'),
             'call user' || g || '@example.com, key AKIA' || upper(substr(md5(g::text), 1, 16)) || ' db postgres://svc:hunter2-' || g || '@db.internal/app',
             jsonb_build_object('contact', jsonb_build_object('email', 'user' || g || '@example.com', 'ssn', CASE WHEN g % 2 = 0 THEN '123' ELSE '234' END || '-45-' || lpad((g % 10000 + 1)::text, 4, '0')))
      FROM generate_series(1, ${ROWS}) AS g`);
    await setup.end();
  });

  after(async () => {
    await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
    await gateway?.close();
    await target?.stop();
  });

  it('simple protocol: every row masked, the count intact, recorded rows masked', async () => {
    const agent = await through();
    const { rows } = await agent.query('SELECT * FROM customers ORDER BY id');
    assert.equal(rows.length, ROWS);
    assertNoRawValue(JSON.stringify(rows), 'a psql-style simple-protocol client');
    // Partial masking keeps what the profile says: the card's last four, the phone's last two.
    assert.match(rows[41].card_number, /1111 0042$|0042$/);
    assert.notEqual(rows[41].email, rows[42].email);
    const recorded = recorder.statements.find((s) => s.text === 'SELECT * FROM customers ORDER BY id')!;
    assert.equal(recorded.completion?.rows, ROWS);
    assert.equal(recorded.completion?.masked?.['column:email:emails'], ROWS, `masked tally: ${JSON.stringify(recorded.completion?.masked)}`);
    assert.equal(recorded.completion?.masked?.['detector:aws-access-key'], ROWS);
    const result = recorder.results.get(recorded.statementId)!;
    assert.equal(result.rows.length, 500);
    assertNoRawValue(JSON.stringify(result), 'the recorded result rows');
  });

  it('the same hash for the same value, so joins and counts still work on masked data', async () => {
    const agent = await through();
    const { rows } = await agent.query('SELECT a.email AS first, b.email AS second FROM customers a JOIN customers b ON b.id = a.id WHERE a.id = 7');
    assert.equal(rows[0].first, rows[0].second);
    assertNoRawValue(JSON.stringify(rows), 'a join');
  });

  it('extended protocol in text: node-postgres with parameters, recorded masked', async () => {
    const agent = await through();
    const { rows } = await agent.query({ text: 'SELECT email, notes, profile FROM customers WHERE id > $1 ORDER BY id', values: [ROWS - 2000] });
    assert.equal(rows.length, 2000);
    assertNoRawValue(JSON.stringify(rows), 'an extended-protocol client');
    const found = await agent.query({ text: 'SELECT id FROM customers WHERE email = $1 OR notes = $2', values: ['user5@example.com', null] });
    assert.deepEqual(found.rows, [{ id: 5 }]);
    const recorded = recorder.statements.find((s) => s.text.startsWith('SELECT id FROM customers WHERE email = $1'))!;
    assert.equal(recorded.parameters?.length, 2);
    assert.equal(recorded.parameters?.[1], null);
    assertNoRawValue(JSON.stringify(recorded.parameters), 'the recorded parameters');
  });

  it('extended protocol in binary: masked text columns and jsonb, never raw', async () => {
    const client = await RawClient.connectTls(gateway.port);
    try {
      await client.login({ user: AGENT.name, database: 'billing' }, AGENT.key);
      client.send(
        { type: 'parse', statement: '', text: 'SELECT id, email, notes, profile, ssn FROM customers WHERE id <= 3000', parameterTypes: [] },
        { type: 'bind', portal: '', statement: '', parameterFormats: [], parameters: [], resultFormats: [1] },
        { type: 'execute', portal: '', maxRows: 0 },
        { type: 'sync' },
      );
      const frames = await client.untilReady();
      const types = typesOf(frames);
      if (types.includes('E')) {
        // Refusing is allowed where the type cannot be masked safely, but then nothing of it came through.
        assert.doesNotMatch(types, /D/);
      } else {
        assert.equal(frames.filter((f) => String.fromCharCode(f.type) === 'D').length, 3000);
      }
      assertNoRawValue(Buffer.concat(frames.map((f) => f.body)).toString('latin1'), 'a binary-format client');
    } finally {
      client.end();
    }
  });

  it('renaming, casting, concatenating or encoding a masked column does not reveal it', async () => {
    const agent = await through();
    const { rows } = await agent.query(`
      SELECT email AS contact, email::varchar(200) AS cast, 'x' || card_number AS joined,
             encode(convert_to(ssn, 'UTF8'), 'base64') AS encoded, reverse(ssn) AS reversed, upper(email) AS shouted
      FROM customers WHERE id = 11`);
    const text = JSON.stringify(rows);
    assertNoRawValue(text, 'derived columns');
    assert.doesNotMatch(text, /USER11@EXAMPLE\.COM/);
    assert.doesNotMatch(text, /4111/);
    assert.doesNotMatch(text, /MTIzLTQ1|MjM0LTQ1/, 'base64 of the SSN');
    assert.doesNotMatch(text, /\d{4}-54-(?:321|432)/, 'the SSN reversed');
  });

  it('follows a renamed masked column into a cursor and a SQL-prepared statement', async () => {
    const agent = await through();
    await agent.query('BEGIN');
    await agent.query('DECLARE quiet CURSOR FOR SELECT ssn AS harmless, card_number AS label FROM customers WHERE id <= 5 ORDER BY id');
    const fetched = await agent.query('FETCH ALL FROM quiet');
    await agent.query('COMMIT');
    assert.equal(fetched.rows.length, 5);
    assertNoRawValue(JSON.stringify(fetched.rows), 'rows fetched from a cursor');
    await agent.query('PREPARE lookup(int) AS SELECT email AS handle FROM customers WHERE id = $1');
    const executed = await agent.query('EXECUTE lookup(12)');
    assertNoRawValue(JSON.stringify(executed.rows), 'rows of an EXECUTE');
  });

  it('statement text and errors the target raises are masked too', async () => {
    const agent = await through();
    await assert.rejects(agent.query("INSERT INTO customers (id, email) VALUES (0, 'user5@example.com')"), (error: { code?: string; detail?: string; message: string }) => {
      assert.equal(error.code, '23505');
      assertNoRawValue(`${error.message} ${error.detail ?? ''}`, 'the error the client got');
      return true;
    });
    const recorded = recorder.statements.find((s) => s.text.startsWith('INSERT INTO customers (id, email) VALUES (0'))!;
    assertNoRawValue(recorded.text, 'the recorded statement text');
    assertNoRawValue(recorded.completion?.errorMessage ?? '', 'the recorded error');
  });

  it('Unicode look-alikes do not slip past the detectors', async () => {
    const agent = await through();
    // Fullwidth digits and a fullwidth commercial at: the same card number and address to a reader.
    const { rows } = await agent.query("SELECT 'card ４１１１ １１１１ １１１１ １１１１ mail ｕｓｅｒ９＠ｅｘａｍｐｌｅ．ｃｏｍ' AS note");
    assert.doesNotMatch(rows[0].note, /４１１１ １１１１ １１１１/);
    assert.doesNotMatch(rows[0].note, /ｅｘａｍｐｌｅ/);
  });
});
