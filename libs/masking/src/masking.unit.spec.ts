import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { before, describe, it } from 'node:test';
import { compileProfile, type CompiledMaskingProfile } from './compiled-profile.js';
import { DEFAULT_PROFILE } from './default-profile.js';
import { loadSqlParser, namedQueryLineage } from './lineage.js';
import { MaskingProfileError, type MaskingProfileSpec } from './profile.js';
import { CompiledProfileSet } from './profile-set.js';
import { profileFromProto, profileToProto } from './proto-mapping.js';
import { PgType, type ResultColumn, type ResultMaskPlan } from './result-plan.js';
import { partial, StrategyApplier } from './strategies.js';
import { dataRow, readDataRow, textColumns } from './testing/wire.js';

const hashKey = randomBytes(32);

const PROFILE: MaskingProfileSpec = {
  name: 'billing',
  version: '7',
  rules: [
    { name: 'cards', column: 'card_number', strategy: 'partial', keepLast: 4 },
    { name: 'emails', column: 'customers.email', strategy: 'hash' },
    { name: 'secrets', columnPattern: '^(password|api_key)$', strategy: 'redact' },
    { name: 'ssn-null', column: 'ssn', strategy: 'null' },
    { name: 'phone-shape', column: 'phone', strategy: 'format-preserving' },
    { name: 'json-card', jsonPath: '$.payment.card', strategy: 'redact' },
    { name: 'json-emails', jsonPath: '$..email', strategy: 'hash' },
    { name: 'emails-in-text', detector: 'email', strategy: 'format-preserving' },
    { name: 'everything-else', detector: '*', strategy: 'redact' },
  ],
};

function plan(profile: CompiledMaskingProfile, columns: ResultColumn[], sql?: string): ResultMaskPlan {
  const result = profile.planResult(columns, sql);
  if ('refused' in result) assert.fail(`refused: ${result.refused}`);
  return result;
}

const texts = (row: Buffer): (string | null)[] => readDataRow(row).map((v) => (v === null ? null : v.toString('utf8')));

before(async () => {
  await loadSqlParser();
});

describe('strategies', () => {
  const applier = new StrategyApplier(hashKey);

  it('hash is deterministic per key and differs across keys', () => {
    const a = applier.apply('jane@example.com', 'hash', 0);
    assert.equal(a, applier.apply('jane@example.com', 'hash', 0));
    assert.notEqual(a, applier.apply('john@example.com', 'hash', 0));
    assert.notEqual(a, new StrategyApplier(randomBytes(32)).apply('jane@example.com', 'hash', 0));
    assert.match(a!, /^h_[0-9a-f]{24}$/);
  });
  it('partial keeps the last N, never more than half the value', () => {
    assert.equal(partial('4111111111111111', 4), '************1111');
    assert.equal(partial('12345', 4), '***45');
    assert.equal(partial('ab', 4), '*b');
    assert.equal(partial('card 😀😀1234', 4), '*******1234');
  });
  it('format-preserving keeps an email shape and its top-level domain, deterministically', () => {
    const masked = applier.formatPreserving('jane.doe@example.com');
    assert.match(masked, /^[a-z]{4}\.[a-z]{3}@[a-z]{7}\.com$/);
    assert.notEqual(masked, 'jane.doe@example.com');
    assert.equal(masked, applier.formatPreserving('jane.doe@example.com'));
  });
  it('format-preserving keeps a phone number shape and its country code', () => {
    const masked = applier.formatPreserving('+44 20 7946 0958');
    assert.match(masked, /^\+44 \d\d \d{4} \d{4}$/);
    assert.notEqual(masked, '+44 20 7946 0958');
  });
  it('null is NULL and redact a fixed token', () => {
    assert.equal(applier.apply('x', 'null', 0), null);
    assert.equal(applier.apply('anything', 'redact', 0), '[REDACTED]');
  });
  it('refuses a short hash key, saying how to make a good one', () => {
    assert.throws(() => new StrategyApplier(randomBytes(16)), /at least 32.*openssl rand/);
  });
});

describe('profile compilation', () => {
  it('names every problem of a bad profile', () => {
    assert.throws(
      () =>
        compileProfile(
          {
            name: 'Bad Name',
            version: '',
            rules: [
              { name: 'two', column: 'a', detector: 'email', strategy: 'redact' },
              { name: 'p', column: 'b', strategy: 'partial' },
              { name: 'd', detector: 'nope', strategy: 'redact' },
              { name: 'j', jsonPath: 'a.b', strategy: 'redact' },
              { name: 'x', columnPattern: '(', strategy: 'redact' },
            ],
          },
          { hashKey },
        ),
      (error: unknown) => {
        assert.ok(error instanceof MaskingProfileError);
        assert.equal(error.problems.length, 7);
        assert.match(error.message, /rule 1 \('two'\) has 2 selectors/);
        assert.match(error.message, /keep_last/);
        assert.match(error.message, /detector 'nope' is unknown/);
        assert.match(error.message, /json_path 'a.b' must start with \$/);
        return true;
      },
    );
  });
  it('the built-in default profile compiles', () => {
    assert.equal(compileProfile(DEFAULT_PROFILE, { hashKey }).name, 'default');
  });
});

describe('redactText', () => {
  const profile = compileProfile(PROFILE, { hashKey });

  it('masks detected values in free text and counts hits by detector, never values', () => {
    const { text, hits } = profile.redactText('ERROR: duplicate key (card)=(4111 1111 1111 1111) for jane@example.com from 10.1.2.3');
    assert.doesNotMatch(text, /4111 1111|jane@example|10\.1\.2\.3/);
    assert.match(text, /\[REDACTED:payment-card\]/);
    assert.match(text, /\[REDACTED:ipv4\]/);
    assert.match(text, /[a-z]{4}@[a-z]{7}\.com/);
    assert.deepEqual(hits, { 'detector:payment-card': 1, 'detector:email': 1, 'detector:ipv4': 1 });
    assert.ok(!JSON.stringify(hits).includes('4111'));
  });
  it('masks JSON paths inside JSON text, then detectors', () => {
    const { text, hits } = profile.redactText(JSON.stringify({ payment: { card: '5555555555554444' }, contacts: [{ email: 'a@b.example' }], note: 'ssn 123-45-6789' }));
    const parsed = JSON.parse(text) as { payment: { card: string }; contacts: { email: string }[]; note: string };
    assert.equal(parsed.payment.card, '[REDACTED]');
    assert.match(parsed.contacts[0]!.email, /^h_/);
    assert.equal(parsed.note, 'ssn [REDACTED:us-ssn]');
    assert.deepEqual(hits, { 'json:json-card': 1, 'json:json-emails': 1, 'detector:us-ssn': 1 });
  });
  it('values masked by a JSON path are not masked again by the detectors', () => {
    const shaped = compileProfile(
      { name: 'shape', version: '1', rules: [{ name: 'fpe', jsonPath: '$.email', strategy: 'format-preserving' }, { name: 'all', detector: '*', strategy: 'redact' }] },
      { hashKey },
    );
    const { text, hits } = shaped.redactText('{"email":"jane@example.com","other":"john@example.com","n":null}');
    const parsed = JSON.parse(text) as { email: string; other: string; n: null };
    assert.match(parsed.email, /^[a-z]{4}@[a-z]{7}\.com$/);
    assert.equal(parsed.other, '[REDACTED:email]');
    assert.equal(parsed.n, null);
    assert.deepEqual(hits, { 'json:fpe': 1, 'detector:email': 1 });
  });
  it('returns the same text when nothing fires', () => {
    const text = 'SELECT 1 returned one row';
    assert.equal(profile.redactText(text).text, text);
  });
  it('masks look-alikes in the original characters', () => {
    const { text } = profile.redactText('card ４１１１１１１１１１１１１１１１ ok');
    assert.equal(text, 'card [REDACTED:payment-card] ok');
  });
});

describe('planResult and maskDataRow', () => {
  const profile = compileProfile(PROFILE, { hashKey });

  it('masks targeted columns, recomputes lengths and leaves the others byte for byte', () => {
    const p = plan(profile, textColumns('id', 'card_number', 'password', 'ssn', 'note'));
    const row = dataRow(['42', '4111111111111111', 'hunter2', '123-45-6789', 'plain words']);
    const masked = p.maskDataRow(row);
    assert.notEqual(masked, row);
    assert.deepEqual(texts(masked), ['42', '************1111', '[REDACTED]', null, 'plain words']);
    assert.deepEqual(p.hits(), { 'column:card_number:cards': 1, 'column:password:secrets': 1, 'column:ssn:ssn-null': 1 });
  });
  it('returns the same buffer when nothing changes', () => {
    const p = plan(profile, textColumns('id', 'note'));
    assert.equal(p.active, true);
    const row = dataRow(['1', 'nothing to see here']);
    assert.equal(p.maskDataRow(row), row);
  });
  it('is inactive for columns no rule or detector can touch', () => {
    const p = plan(profile, [{ name: 'id', tableOid: 1, columnId: 1, typeOid: 23, format: 0 }, { name: 'at', tableOid: 1, columnId: 2, typeOid: 1184, format: 1 }]);
    assert.equal(p.active, false);
  });
  it('keeps NULLs as NULLs', () => {
    const p = plan(profile, textColumns('card_number', 'note'));
    const row = dataRow([null, null]);
    assert.equal(p.maskDataRow(row), row);
  });
  it('scans free-text columns with the detectors', () => {
    const p = plan(profile, textColumns('note'));
    assert.deepEqual(texts(p.maskDataRow(dataRow(['call +1 415 555 2671 or key AKIAIOSFODNN7EXAMPLE']))), ['call [REDACTED:phone] or key [REDACTED:aws-access-key]']);
    assert.deepEqual(p.hits(), { 'detector:phone': 1, 'detector:aws-access-key': 1 });
  });
  it('masks inside jsonb in text and in binary format (version byte kept)', () => {
    const doc = JSON.stringify({ payment: { card: '4111111111111111', amount: 10 }, customer: { email: 'x@y.example' } });
    const textPlan = plan(profile, [{ name: 'body', tableOid: 0, columnId: 0, typeOid: PgType.jsonb, format: 0 }]);
    const [maskedText] = texts(textPlan.maskDataRow(dataRow([doc])));
    const parsed = JSON.parse(maskedText!) as { payment: { card: string; amount: number }; customer: { email: string } };
    assert.equal(parsed.payment.card, '[REDACTED]');
    assert.equal(parsed.payment.amount, 10);
    assert.match(parsed.customer.email, /^h_/);
    const binaryPlan = plan(profile, [{ name: 'body', tableOid: 0, columnId: 0, typeOid: PgType.jsonb, format: 1 }]);
    const [maskedBinary] = readDataRow(binaryPlan.maskDataRow(dataRow([Buffer.concat([Buffer.of(1), Buffer.from(doc)])])));
    assert.equal(maskedBinary![0], 1);
    assert.deepEqual(JSON.parse(maskedBinary!.subarray(1).toString('utf8')), parsed);
  });
  it('a whole-column rule on json keeps the value valid JSON', () => {
    const p = plan(profile, [{ name: 'password', tableOid: 0, columnId: 0, typeOid: PgType.json, format: 0 }]);
    assert.deepEqual(texts(p.maskDataRow(dataRow(['{"a":1}']))), ['"[REDACTED]"']);
  });
  it('masks binary text, varchar and bytea columns in their own representation', () => {
    const p = plan(profile, [
      { name: 'password', tableOid: 1, columnId: 1, typeOid: PgType.varchar, format: 1 },
      { name: 'api_key', tableOid: 1, columnId: 2, typeOid: PgType.bytea, format: 1 },
      { name: 'api_key', tableOid: 1, columnId: 3, typeOid: PgType.bytea, format: 0 },
    ]);
    const masked = readDataRow(p.maskDataRow(dataRow(['pw', Buffer.from([0xde, 0xad]), '\\xdead'])));
    assert.equal(masked[0]!.toString(), '[REDACTED]');
    assert.equal(masked[1]!.toString(), '[REDACTED]');
    assert.equal(masked[2]!.toString(), `\\x${Buffer.from('[REDACTED]').toString('hex')}`);
  });
  it('a targeted number column becomes NULL, in text and in binary', () => {
    const p = plan(profile, [
      { name: 'card_number', tableOid: 1, columnId: 1, typeOid: PgType.int8, format: 0 },
      { name: 'card_number', tableOid: 1, columnId: 2, typeOid: PgType.int8, format: 1 },
    ]);
    const binary = Buffer.alloc(8);
    binary.writeBigInt64BE(4111111111111111n);
    assert.deepEqual(readDataRow(p.maskDataRow(dataRow(['4111111111111111', binary]))), [null, null]);
  });
  it('a card number kept in an int8 or numeric column, found by the detector, becomes NULL', () => {
    const p = plan(profile, [
      { name: 'n', tableOid: 0, columnId: 0, typeOid: PgType.int8, format: 1 },
      { name: 'm', tableOid: 0, columnId: 0, typeOid: PgType.numeric, format: 1 },
      { name: 'k', tableOid: 0, columnId: 0, typeOid: PgType.int8, format: 1 },
    ]);
    const int8 = Buffer.alloc(8);
    int8.writeBigInt64BE(4111111111111111n);
    // numeric 4111111111111111: weight 3, base-10000 digits 4111 1111 1111 1111.
    const numeric = Buffer.alloc(16);
    numeric.writeInt16BE(4, 0);
    numeric.writeInt16BE(3, 2);
    [4111, 1111, 1111, 1111].forEach((d, k) => numeric.writeInt16BE(d, 8 + 2 * k));
    const small = Buffer.alloc(8);
    small.writeBigInt64BE(42n);
    const masked = readDataRow(p.maskDataRow(dataRow([int8, numeric, small])));
    assert.equal(masked[0], null);
    assert.equal(masked[1], null);
    assert.deepEqual(masked[2], small);
  });
  it('scans text arrays in text format, keeping the array literal valid', () => {
    const p = plan(profile, [{ name: 'contacts', tableOid: 0, columnId: 0, typeOid: 1009, format: 0 }]);
    const [masked] = texts(p.maskDataRow(dataRow(['{"call +1 415 555 2671",10.0.0.1,plain}'])));
    assert.equal(masked, '{"call [REDACTED:phone]",[REDACTED:ipv4],plain}');
  });
  it('refuses a targeted user type in binary format, and says what to do', () => {
    const result = profile.planResult([{ name: 'password', tableOid: 1, columnId: 1, typeOid: 40001, format: 1 }]);
    assert.ok('refused' in result);
    assert.match(result.refused, /column "password" is masked by rule 'secrets'.*binary format.*text format/);
  });
  it('masks a targeted user type in text format', () => {
    const p = plan(profile, [{ name: 'password', tableOid: 1, columnId: 1, typeOid: 40001, format: 0 }]);
    assert.deepEqual(texts(p.maskDataRow(dataRow(['citext value']))), ['[REDACTED]']);
  });
  it('throws on a DataRow that does not match its RowDescription', () => {
    const p = plan(profile, textColumns('card_number'));
    assert.throws(() => p.maskDataRow(dataRow(['a', 'b'])), /2 columns but its RowDescription described 1/);
  });
  it('a schema-qualified rule matches its table with or without the schema in the statement', () => {
    const qualified = compileProfile({ name: 'q', version: '1', rules: [{ name: 'pw', column: 'public.users.password', strategy: 'redact' }] }, { hashKey });
    for (const sql of ['SELECT password FROM public.users', 'SELECT password AS p FROM users']) {
      const result = qualified.planResult(textColumns('p'), sql);
      assert.ok(!('refused' in result));
      assert.deepEqual(texts(result.maskDataRow(dataRow(['x']))), ['[REDACTED]'], sql);
    }
  });
  it('a qualified rule matches its table only', () => {
    const other = plan(profile, textColumns('email'), 'SELECT email FROM staff');
    assert.deepEqual(texts(other.maskDataRow(dataRow(['plain']))), ['plain']);
    const customers = plan(profile, textColumns('email'), 'SELECT email FROM customers');
    assert.match(texts(customers.maskDataRow(dataRow(['plain'])))[0]!, /^h_/);
  });
});

describe('column rules follow lineage', () => {
  const profile = compileProfile(PROFILE, { hashKey });
  const masks = (sql: string, columns: string[], values: string[]): (string | null)[] => texts(plan(profile, textColumns(...columns), sql).maskDataRow(dataRow(values)));
  const card = '4111111111111111';

  it('through an alias: a plain value keeps its strategy', () => {
    assert.deepEqual(masks('SELECT card_number AS c FROM payments', ['c'], [card]), ['************1111']);
  });
  it('through a cast, concatenation, encode() and reverse(): masked whole (partial becomes redact)', () => {
    assert.deepEqual(masks('SELECT card_number::text AS c FROM payments', ['c'], [card]), ['[REDACTED]']);
    assert.deepEqual(masks("SELECT 'x' || card_number AS c FROM payments", ['c'], [`x${card}`]), ['[REDACTED]']);
    assert.deepEqual(masks("SELECT encode(convert_to(card_number, 'UTF8'), 'base64') AS c FROM payments", ['c'], ['NDExMQ==']), ['[REDACTED]']);
    assert.deepEqual(masks('SELECT reverse(card_number) AS c FROM payments', ['c'], ['1111111111111114']), ['[REDACTED]']);
  });
  it('through a subquery, a CTE and a UNION', () => {
    assert.deepEqual(masks('SELECT x FROM (SELECT card_number AS x FROM payments) s', ['x'], [card]), ['************1111']);
    assert.deepEqual(masks('WITH c AS (SELECT password AS p FROM users) SELECT p AS q FROM c', ['q'], ['hunter2']), ['[REDACTED]']);
    assert.deepEqual(masks('SELECT name FROM people UNION SELECT password FROM users', ['name'], ['hunter2']), ['[REDACTED]']);
  });
  it('a whole-row reference carries every column', () => {
    assert.deepEqual(masks('SELECT to_jsonb(u) AS j FROM users u', ['j'], ['{"password":"x"}']), ['[REDACTED]']);
  });
  it('SELECT * expands through the RowDescription names', () => {
    assert.deepEqual(masks('SELECT * FROM users', ['id', 'password'], ['1', 'x']), ['1', '[REDACTED]']);
    const columns: ResultColumn[] = [
      { name: 'id', tableOid: 100, columnId: 1, typeOid: 25, format: 0 },
      { name: 'password', tableOid: 100, columnId: 2, typeOid: 25, format: 0 },
      { name: 'id', tableOid: 200, columnId: 1, typeOid: 25, format: 0 },
      { name: 'note', tableOid: 200, columnId: 2, typeOid: 25, format: 0 },
      { name: 'n', tableOid: 0, columnId: 0, typeOid: 25, format: 0 },
    ];
    const p = plan(profile, columns, 'SELECT u.*, o.*, reverse(u.password) AS n FROM users u JOIN orders o ON true');
    assert.deepEqual(texts(p.maskDataRow(dataRow(['1', 'pw', '2', 'fine', 'wp']))), ['1', '[REDACTED]', '2', 'fine', '[REDACTED]']);
  });
  it('refuses a query it cannot follow that mentions a masked column, and says what to do', () => {
    const result = profile.planResult(textColumns('c'), 'SELECT card_number AS c FROM payments TABLESAMPLE SYSTEM (50)');
    assert.ok('refused' in result);
    assert.match(result.refused, /mentions the masked column "card_number".*select masked columns in a plain SELECT/);
    const harmless = profile.planResult(textColumns('id'), 'SELECT id FROM payments TABLESAMPLE SYSTEM (50)');
    assert.ok(!('refused' in harmless));
  });
  it('a cursor or a prepared statement does not let an alias escape: FETCH and EXECUTE use the lineage kept from DECLARE and PREPARE', () => {
    for (const declared of ['DECLARE c CURSOR FOR SELECT card_number AS n FROM payments', 'PREPARE p AS SELECT reverse(card_number) AS n FROM payments']) {
      const named = namedQueryLineage(declared);
      assert.ok(named);
      const result = profile.planResult(textColumns('n'), named.lineage);
      assert.ok(!('refused' in result));
      assert.notEqual(texts(result.maskDataRow(dataRow([card])))[0], card, declared);
    }
    assert.deepEqual(
      [namedQueryLineage('DECLARE c CURSOR FOR SELECT 1')?.kind, namedQueryLineage('DECLARE c CURSOR FOR SELECT 1')?.name, namedQueryLineage('PREPARE q (int) AS SELECT $1')?.name, namedQueryLineage('SELECT 1')],
      ['cursor', 'c', 'q', undefined],
    );
  });
  it('count() reveals no value and is left alone', () => {
    assert.deepEqual(masks('SELECT count(password) AS n FROM users', ['n'], ['3']), ['3']);
  });
});

describe('proto mapping', () => {
  it('a profile survives the round trip through its proto form', () => {
    assert.deepEqual(profileFromProto(profileToProto(PROFILE)), PROFILE);
  });
});

describe('CompiledProfileSet', () => {
  it('compiles what changed, keeps what did not, and keeps the previous version of a profile that does not compile', () => {
    const set = new CompiledProfileSet(hashKey);
    const v1 = profileToProto(PROFILE);
    const def = profileToProto(DEFAULT_PROFILE);
    assert.deepEqual(set.update({ profiles: [v1, def] }), { compiled: ['billing', 'default'], removed: [], refused: [] });
    const billing = set.profile('billing');
    assert.deepEqual(set.update({ profiles: [v1, def] }), { compiled: [], removed: [], refused: [] });
    assert.equal(set.profile('billing'), billing);
    const broken = { ...v1, version: '8', rules: [{ ...v1.rules[0]!, strategy: 99 as never }] };
    const update = set.update({ profiles: [broken] });
    assert.deepEqual(update.compiled, []);
    assert.deepEqual(update.removed, ['default']);
    assert.match(update.refused[0]!.reason, /strategy 'unknown strategy 99' is not one of/);
    assert.equal(set.profile('billing')?.version, '7');
    assert.deepEqual(set.names(), ['billing']);
  });
});
