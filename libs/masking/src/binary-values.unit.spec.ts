import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { before, describe, it } from 'node:test';
import { compileProfile } from './compiled-profile.js';
import { DEFAULT_PROFILE } from './default-profile.js';
import { loadSqlParser } from './lineage.js';
import type { MaskingProfileSpec } from './profile.js';
import { PgType, type ResultColumn, type ResultMaskPlan } from './result-plan.js';
import { StrategyApplier } from './strategies.js';
import { binaryArray, dataRow, readBinaryArray, readDataRow } from './testing/wire.js';

const hashKey = randomBytes(32);
const profile = compileProfile(DEFAULT_PROFILE, { hashKey });
const AWS_KEY = 'AKIAIOSFODNN7EXAMPLE';
const PEM = '-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\n-----END PRIVATE KEY-----\n';

function plan(columns: ResultColumn[]): ResultMaskPlan {
  const result = profile.planResult(columns);
  if ('refused' in result) assert.fail(`refused: ${result.refused}`);
  return result;
}

const column = (name: string, typeOid: number, format: 0 | 1): ResultColumn => ({ name, tableOid: 0, columnId: 0, typeOid, format });

before(async () => {
  await loadSqlParser();
});

describe('bytea under the detectors', () => {
  it('masks a private key stored as bytes, in binary format, as bytes', () => {
    const p = plan([column('blob', PgType.bytea, 1)]);
    const [masked] = readDataRow(p.maskDataRow(dataRow([Buffer.from(`key file:\n${PEM}`)])));
    assert.equal(masked!.toString('utf8'), 'key file:\n[REDACTED:private-key]\n');
    assert.deepEqual(p.hits(), { 'detector:private-key': 1 });
  });

  it('masks in hex text format and answers in hex', () => {
    const p = plan([column('blob', PgType.bytea, 0)]);
    const [masked] = readDataRow(p.maskDataRow(dataRow([`\\x${Buffer.from(`aws ${AWS_KEY} done`).toString('hex')}`])));
    assert.equal(masked!.toString('latin1'), `\\x${Buffer.from('aws [REDACTED:aws-access-key] done').toString('hex')}`);
  });

  it('masks in escape text format (bytea_output = escape) and answers in it', () => {
    const p = plan([column('blob', PgType.bytea, 0)]);
    const [masked] = readDataRow(p.maskDataRow(dataRow([`\\000\\\\ ${AWS_KEY}\\377`])));
    assert.equal(masked!.toString('latin1'), '\\000\\\\ [REDACTED:aws-access-key]\\377');
  });

  it('finds text inside binary data, keeping every other byte as it was', () => {
    const p = plan([column('blob', PgType.bytea, 1)]);
    const before = Buffer.from([0x00, 0xff, 0xfe, 0x20]);
    const after = Buffer.from([0x20, 0x80, 0x01]);
    const [masked] = readDataRow(p.maskDataRow(dataRow([Buffer.concat([before, Buffer.from(AWS_KEY), after])])));
    assert.deepEqual(masked, Buffer.concat([before, Buffer.from('[REDACTED:aws-access-key]'), after]));
  });

  it('masks bytea[] in text format element by element, hex and escape, keeping the literal valid', () => {
    const p = plan([column('blobs', 1001, 0)]);
    const hex = (text: string) => `\\\\x${Buffer.from(text).toString('hex')}`;
    const literal = `[0:2]={"${hex('clean')}",NULL,"${hex(`key ${AWS_KEY}`)}",plain,${AWS_KEY}}`;
    const [masked] = readDataRow(p.maskDataRow(dataRow([literal])));
    assert.equal(
      masked!.toString('latin1'),
      `[0:2]={"${hex('clean')}",NULL,"${hex('key [REDACTED:aws-access-key]')}",plain,"[REDACTED:aws-access-key]"}`,
    );
    const clean = dataRow([`{"${hex('clean')}",NULL}`]);
    assert.equal(p.maskDataRow(clean), clean);
  });

  it('leaves clean bytes alone: the same DataRow comes back', () => {
    const p = plan([column('blob', PgType.bytea, 1), column('hex', PgType.bytea, 0)]);
    const row = dataRow([randomBytes(64).fill(0x41, 0, 8), '\\xdeadbeef']);
    assert.equal(p.maskDataRow(row), row);
  });
});

describe('binary arrays', () => {
  it('masks each element of a text[] read in binary format and rebuilds the lengths', () => {
    const p = plan([column('id', 23, 1), column('notes', 1009, 1)]);
    const id = Buffer.from([0, 0, 0, 7]);
    const row = dataRow([id, binaryArray(PgType.text, ['plain', null, `key ${AWS_KEY}`, 'mail jane.doe@example.com'])]);
    const [maskedId, array] = readDataRow(p.maskDataRow(row));
    assert.deepEqual(maskedId, id);
    assert.deepEqual(
      readBinaryArray(array!).map((e) => e?.toString('utf8') ?? null),
      ['plain', null, 'key [REDACTED:aws-access-key]', 'mail [REDACTED:email]'],
    );
    assert.deepEqual(p.hits(), { 'detector:aws-access-key': 1, 'detector:email': 1 });
  });

  it('masks bytea[] and jsonb[] elements in their own binary form', () => {
    const p = plan([column('blobs', 1001, 1), column('docs', 3807, 1)]);
    const doc = Buffer.concat([Buffer.of(1), Buffer.from(JSON.stringify({ note: `id ${AWS_KEY}` }))]);
    const [blobs, docs] = readDataRow(p.maskDataRow(dataRow([binaryArray(PgType.bytea, [Buffer.from(PEM)]), binaryArray(PgType.jsonb, [doc])])));
    assert.equal(readBinaryArray(blobs!)[0]!.toString('utf8'), '[REDACTED:private-key]\n');
    const element = readBinaryArray(docs!)[0]!;
    assert.equal(element[0], 1);
    assert.deepEqual(JSON.parse(element.subarray(1).toString('utf8')), { note: 'id [REDACTED:aws-access-key]' });
  });

  it('passes a clean array through untouched', () => {
    const p = plan([column('tags', 1015, 1)]);
    const row = dataRow([binaryArray(PgType.varchar, ['red', 'green', 'blue'])]);
    assert.equal(p.maskDataRow(row), row);
  });

  it('throws on an array whose element type is not the one its column declares', () => {
    const p = plan([column('tags', 1009, 1)]);
    assert.throws(() => p.maskDataRow(dataRow([binaryArray(PgType.int8, [Buffer.alloc(8)])])), /binary array of type 25 does not have the layout of one/);
  });

  it('still refuses a whole-column rule on a binary user type', () => {
    const result = profile.planResult([column('password', 40001, 1)]);
    assert.ok('refused' in result);
  });
});

describe('the byte paths of column rules give the tokens the text paths give', () => {
  const spec: MaskingProfileSpec = {
    name: 'tokens',
    version: '1',
    rules: [
      { name: 'emails', column: 'email', strategy: 'hash' },
      { name: 'phones', column: 'phone', strategy: 'partial', keepLast: 3 },
    ],
  };
  const tokens = compileProfile(spec, { hashKey });
  const applier = new StrategyApplier(hashKey);

  for (const [email, phone] of [
    ['jane@example.com', '+1 415 555 2671'],
    ['jöhn@exämple.com', '０１２３４５６７'],
    ['', 'ab'],
  ] as const) {
    it(`hash and partial of ${JSON.stringify(email)} and ${JSON.stringify(phone)}`, () => {
      const result = tokens.planResult([column('email', PgType.text, 0), column('phone', PgType.varchar, 1)]);
      if ('refused' in result) assert.fail(result.refused);
      const [hashed, kept] = readDataRow(result.maskDataRow(dataRow([email, phone])));
      assert.equal(hashed!.toString('utf8'), applier.apply(email, 'hash', 0));
      assert.equal(kept!.toString('utf8'), applier.apply(phone, 'partial', 3));
    });
  }
});

describe('a DataRow that does not add up', () => {
  it('throws rather than reading past its end', () => {
    const p = plan([column('note', PgType.text, 0), column('other', PgType.text, 0)]);
    const row = dataRow(['some text', 'more text']);
    assert.throws(() => p.maskDataRow(row.subarray(0, 22)), /ends before its last column|runs past the end/);
    assert.throws(() => p.maskDataRow(row.subarray(0, 12)), /runs past the end/);
  });
});
