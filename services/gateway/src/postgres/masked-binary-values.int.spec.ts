import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type pg from 'pg';
import { compileProfile, DEFAULT_PROFILE } from '@tracegate/masking-engine';
import { startPostgres } from '@tracegate/test-harness';
import type { MaskingProfiles, StatementDecision, StatementJudge } from './ports.js';
import { MemoryRecorder, startGatewayFixture, type GatewayFixture } from './testing/gateway-fixture.js';

// Secrets written as bytes (bytea) and inside array elements, read through the gateway by
// node-postgres in text and in binary format: the detectors see them either way, and the client
// gets the masked value in the form it asked for.

const AWS_KEY = 'AKIAIOSFODNN7EXAMPLE';
const PEM_BODY = 'MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj';
const PEM = `-----BEGIN PRIVATE KEY-----\n${PEM_BODY}\n-----END PRIVATE KEY-----\n`;

class DefaultProfileJudge implements StatementJudge {
  async decide(): Promise<StatementDecision> {
    return { effect: 'allow', rule: 'agents-read', reason: '', policyVersion: 'v1', maskingProfile: 'default' };
  }
}

/** Every column as the bytes the gateway sent, text or binary, so the test reads the wire form itself. */
const RAW_TYPES = { getTypeParser: () => (value: string | Buffer) => value };

function assertNoSecret(bytes: Buffer | string, where: string): void {
  const text = typeof bytes === 'string' ? bytes : bytes.toString('latin1');
  assert.doesNotMatch(text, new RegExp(AWS_KEY), `the AWS key reached ${where}`);
  assert.doesNotMatch(text, new RegExp(PEM_BODY.slice(0, 24)), `the private key reached ${where}`);
}

/** Elements of a one-dimensional binary array (array_send). */
function arrayElements(value: Buffer): (Buffer | null)[] {
  const dimensions = value.readInt32BE(0);
  const count = dimensions === 0 ? 0 : value.readInt32BE(12);
  let at = 12 + dimensions * 8;
  const out: (Buffer | null)[] = [];
  for (let k = 0; k < count; k++) {
    const length = value.readInt32BE(at);
    at += 4;
    out.push(length < 0 ? null : value.subarray(at, at + length));
    if (length > 0) at += length;
  }
  assert.equal(at, value.length, 'the rebuilt array has no stray bytes');
  return out;
}

describe('bytea values and array elements under the detectors, text and binary', () => {
  let target: Awaited<ReturnType<typeof startPostgres>>;
  let gateway: GatewayFixture;
  let agent: pg.Client;
  /** Asks for every result column in binary format (node-postgres does so for statements with parameters). */
  let binaryAgent: pg.Client;
  const recorder = new MemoryRecorder();
  const profile = compileProfile(DEFAULT_PROFILE, { hashKey: randomBytes(32) });
  const masking: MaskingProfiles = { profile: (name) => (name === 'default' ? profile : undefined) };

  before(async () => {
    target = await startPostgres();
    gateway = await startGatewayFixture(target, { recorder, judge: new DefaultProfileJudge(), masking });
    const setup = await gateway.direct();
    await setup.query('CREATE TABLE blobs (id int PRIMARY KEY, body bytea, notes text[], files bytea[])');
    await setup.query('INSERT INTO blobs VALUES ($1, $2, $3, $4), (2, $5, $6, $7)', [
      1,
      Buffer.concat([Buffer.from([0, 1, 2, 0xff]), Buffer.from(PEM)]),
      // node-postgres hands binary values over as UTF-8-decoded strings, so these arrays hold no
      // NULL (a -1 length) and no byte above 0x7f: the test can then read their binary form back.
      ['nothing here', `deploy key ${AWS_KEY}`, 'last'],
      [Buffer.from(`aws_access_key_id = ${AWS_KEY}\n`), Buffer.from('plain bytes')],
      Buffer.from([0xca, 0xfe, 0xba, 0xbe]),
      ['plain', 'words'],
      [Buffer.from([1, 2, 3])],
    ]);
    await setup.end();
    agent = await gateway.client();
    // `binary` is a node-postgres client setting its type declarations leave out.
    binaryAgent = await gateway.client({ binary: true } as object);
  });

  after(async () => {
    await agent?.end().catch(() => undefined);
    await binaryAgent?.end().catch(() => undefined);
    await gateway?.close();
    await target?.stop();
  });

  it('a private key in a bytea column, read in text (hex) format, comes back masked hex', async () => {
    const { rows } = await agent.query({ text: 'SELECT body FROM blobs ORDER BY id', types: RAW_TYPES });
    const first = rows[0].body as string;
    assert.match(first, /^\\x/);
    const bytes = Buffer.from(first.slice(2), 'hex');
    assertNoSecret(bytes, 'a text-format client');
    assert.deepEqual(bytes.subarray(0, 4), Buffer.from([0, 1, 2, 0xff]), 'the bytes around the key are kept');
    assert.match(bytes.toString('latin1'), /\[REDACTED:private-key\]/);
    assert.equal(rows[1].body, '\\xcafebabe', 'a clean bytea is untouched');
  });

  it('read in binary format by node-postgres, the bytea comes back masked bytes', async () => {
    const { rows } = await binaryAgent.query({ text: 'SELECT body FROM blobs WHERE id = $1', values: [1], types: RAW_TYPES });
    // Raw binary, as node-postgres passes it on (a string of the bytes decoded as UTF-8).
    const bytes = Buffer.from(rows[0].body as string | Buffer);
    assertNoSecret(bytes, 'a binary-format client');
    assert.match(bytes.toString('latin1'), /\[REDACTED:private-key\]/);
  });

  it('with bytea_output = escape, the escape form is scanned and kept', async () => {
    await agent.query('SET bytea_output = escape');
    try {
      const { rows } = await agent.query({ text: 'SELECT body FROM blobs WHERE id = 1', types: RAW_TYPES });
      const text = rows[0].body as string;
      assert.match(text, /^\\000\\001\\002\\377/);
      assertNoSecret(text, 'an escape-format client');
      assert.match(text, /\[REDACTED:private-key\]/);
    } finally {
      await agent.query('RESET bytea_output');
    }
  });

  it('a text[] element read in binary format is masked, the array rebuilt', async () => {
    const { rows } = await binaryAgent.query({ text: 'SELECT notes, files FROM blobs WHERE id = $1', values: [1], types: RAW_TYPES });
    const notes = arrayElements(Buffer.from(rows[0].notes as string | Buffer)).map((e) => e?.toString('utf8') ?? null);
    assert.deepEqual(notes, ['nothing here', 'deploy key [REDACTED:aws-access-key]', 'last']);
    const files = arrayElements(Buffer.from(rows[0].files as string | Buffer));
    assertNoSecret(files[0]!, 'a bytea[] element');
    assert.equal(files[0]!.toString('utf8'), 'aws_access_key_id = [REDACTED:aws-access-key]\n');
    assert.equal(files[1]!.toString('utf8'), 'plain bytes');
  });

  it('a bytea[] in text format has each hex element decoded, masked and re-encoded', async () => {
    const { rows } = await agent.query({ text: 'SELECT files FROM blobs WHERE id = 1', types: RAW_TYPES });
    const literal = rows[0].files as string;
    const elements = [...literal.matchAll(/"\\\\x([0-9a-f]*)"/g)].map((m) => Buffer.from(m[1]!, 'hex').toString('utf8'));
    assert.deepEqual(elements, ['aws_access_key_id = [REDACTED:aws-access-key]\n', 'plain bytes'], literal);
  });

  it('the same array in text format is masked too, and the hits are recorded', async () => {
    const { rows } = await agent.query({ text: 'SELECT notes FROM blobs WHERE id = 1', types: RAW_TYPES });
    assertNoSecret(rows[0].notes as string, 'a text-format array');
    const recorded = recorder.statements.find((s) => s.text === 'SELECT body FROM blobs ORDER BY id')!;
    assert.equal(recorded.completion?.masked?.['detector:private-key'], 1, JSON.stringify(recorded.completion?.masked));
  });
});
