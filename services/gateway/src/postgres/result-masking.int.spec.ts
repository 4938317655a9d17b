import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type pg from 'pg';
import { startPostgres } from '@tracegate/test-harness';
import type { MaskingProfile, MaskingProfiles, ResultColumn, ResultMaskPlan, StatementContext, StatementDecision, StatementJudge } from './ports.js';
import { AGENT, MemoryRecorder, startGatewayFixture, type GatewayFixture } from './testing/gateway-fixture.js';
import { RawClient, sqlstateOf, typesOf } from './testing/raw-client.js';

// The gateway's side of masking: which messages it rewrites and how it keeps the stream whole.
// The profile here is a small one written for the test (a column named `email` becomes
// 'REDACTED'; e-mail addresses in free text become '[email]'), so that each assertion is about
// the gateway's plumbing; the masking engine's own detectors are tested in libs/masking, and the
// two together end to end in tests/.

const EMAIL = /[\w.+-]+@[\w-]+\.[\w.]+/g;
const TEXT_TYPES = new Set([25, 1043]); // text, varchar

class TestPlan implements ResultMaskPlan {
  private masked = 0;
  constructor(private readonly targets: ReadonlySet<number>) {}
  get active(): boolean {
    return this.targets.size > 0;
  }
  maskDataRow(message: Buffer): Buffer {
    const count = message.readInt16BE(5);
    const parts: Buffer[] = [];
    let offset = 7;
    let changed = false;
    for (let i = 0; i < count; i += 1) {
      const length = message.readInt32BE(offset);
      const value = length < 0 ? undefined : message.subarray(offset + 4, offset + 4 + length);
      offset += 4 + Math.max(length, 0);
      const out = value && this.targets.has(i) ? Buffer.from('REDACTED') : value;
      if (out !== value) {
        changed = true;
        this.masked += 1;
      }
      const header = Buffer.alloc(4);
      header.writeInt32BE(out ? out.length : -1);
      parts.push(header, out ?? Buffer.alloc(0));
    }
    if (!changed) return message;
    const body = Buffer.concat([message.subarray(5, 7), ...parts]);
    const result = Buffer.alloc(5 + body.length);
    result[0] = 0x44;
    result.writeInt32BE(body.length + 4, 1);
    body.copy(result, 5);
    return result;
  }
  hits() {
    return { 'column:email': this.masked };
  }
}

const emailProfile: MaskingProfile = {
  name: 'pii',
  version: 'test-1',
  planResult(columns: readonly ResultColumn[]) {
    const targets = new Set<number>();
    for (const [i, column] of columns.entries()) {
      if (column.name !== 'email') continue;
      if (column.format === 1 && !TEXT_TYPES.has(column.typeOid)) return { refused: `column "${column.name}" is masked and cannot be returned in binary format` };
      targets.add(i);
    }
    return new TestPlan(targets);
  },
  redactText(text: string) {
    let count = 0;
    const masked = text.replace(EMAIL, () => {
      count += 1;
      return '[email]';
    });
    return { text: masked, hits: count ? { email: count } : ({} as Record<string, number>) };
  },
  createStreamRedactor() {
    // Holds back the last line fragment, so an address split across chunks is still whole when masked.
    let held = '';
    let count = 0;
    const mask = (text: string) =>
      text.replace(EMAIL, () => {
        count += 1;
        return '[email]';
      });
    return {
      push(chunk: Buffer) {
        const text = held + chunk.toString('utf8');
        const cut = text.lastIndexOf('\n') + 1;
        held = text.slice(cut);
        return Buffer.from(mask(text.slice(0, cut)));
      },
      flush() {
        const rest = mask(held);
        held = '';
        return Buffer.from(rest);
      },
      end() {
        return this.flush();
      },
      hits: () => ({ email: count }),
    };
  },
};

const profiles: MaskingProfiles = { profile: (name) => (name === 'pii' ? emailProfile : undefined) };

/** Everything is allowed; statements on `people` are masked with 'pii', and `missing` names a profile nobody has. */
class MaskingJudge implements StatementJudge {
  async decide(statement: StatementContext): Promise<StatementDecision> {
    const profile = /\bpeople\b/i.test(statement.text) ? 'pii' : /\bmissing_profile\b/.test(statement.text) ? 'absent' : '';
    return { effect: 'allow', rule: 'all', reason: '', policyVersion: 'v1', maskingProfile: profile };
  }
}

describe('masking results in the data path', () => {
  let target: Awaited<ReturnType<typeof startPostgres>>;
  let gateway: GatewayFixture;
  const recorder = new MemoryRecorder();
  const clients: pg.Client[] = [];
  const through = async () => {
    const c = await gateway.client();
    clients.push(c);
    return c;
  };
  const raw = async () => {
    const client = await RawClient.connectTls(gateway.port);
    await client.login({ user: AGENT.name, database: 'billing' }, AGENT.key);
    return client;
  };

  before(async () => {
    target = await startPostgres();
    gateway = await startGatewayFixture(target, { recorder, judge: new MaskingJudge(), masking: profiles, recordedRows: 120 });
    const setup = await gateway.direct();
    await setup.query('CREATE TABLE people (id int PRIMARY KEY, email text UNIQUE, note text)');
    await setup.query("INSERT INTO people SELECT g, 'user' || g || '@example.com', 'note ' || g FROM generate_series(1, 2000) AS g");
    await setup.query("INSERT INTO people VALUES (0, 'big@example.com', repeat('x', 300000) || ' contact big@example.com')");
    await setup.end();
  });

  after(async () => {
    await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
    await gateway?.close();
    await target?.stop();
  });

  it('masks the column in every row of a simple-protocol result, and records masked rows up to the cap', async () => {
    const agent = await through();
    const { rows } = await agent.query('SELECT id, email, note FROM people WHERE id > 0 ORDER BY id');
    assert.equal(rows.length, 2000);
    assert.ok(rows.every((r) => r.email === 'REDACTED'));
    assert.equal(rows[41].note, 'note 42');
    const recorded = recorder.statements.find((s) => s.text.startsWith('SELECT id, email, note FROM people WHERE id > 0'))!;
    const result = recorder.results.get(recorded.statementId)!;
    assert.deepEqual(result.columns, ['id', 'email', 'note']);
    assert.equal(result.rows.length, 120);
    assert.ok(result.rows.every((r) => r[1] === 'REDACTED'));
    assert.equal(recorded.completion?.rows, 2000);
    assert.equal(recorded.completion?.masked?.['column:email'], 2000);
  });

  it('masks a row far larger than one chunk', async () => {
    const agent = await through();
    const { rows } = await agent.query('SELECT email, note FROM people WHERE id = 0');
    assert.equal(rows[0].email, 'REDACTED');
    assert.equal(rows[0].note.length, 300000 + ' contact big@example.com'.length);
  });

  it('masks extended-protocol results in text and binary, and refuses binary where the type cannot be masked', async () => {
    const agent = await through();
    const { rows } = await agent.query({ text: 'SELECT email FROM people WHERE id = $1', values: [7] });
    assert.deepEqual(rows, [{ email: 'REDACTED' }]);

    const client = await raw();
    try {
      client.send(
        { type: 'parse', statement: '', text: 'SELECT email FROM people WHERE id = 8', parameterTypes: [] },
        { type: 'bind', portal: '', statement: '', parameterFormats: [], parameters: [], resultFormats: [1] },
        { type: 'describe', target: 'P', name: '' },
        { type: 'execute', portal: '', maxRows: 0 },
        { type: 'sync' },
      );
      const frames = await client.untilReady();
      assert.equal(typesOf(frames), '1 2 T D C Z');
      assert.doesNotMatch(frames[3]!.body.toString('latin1'), /user8@example\.com/);
      assert.match(frames[3]!.body.toString('latin1'), /REDACTED/);

      client.send(
        { type: 'parse', statement: '', text: 'SELECT id AS email FROM people WHERE id = 8', parameterTypes: [] },
        { type: 'bind', portal: '', statement: '', parameterFormats: [], parameters: [], resultFormats: [1] },
        { type: 'describe', target: 'P', name: '' },
        { type: 'execute', portal: '', maxRows: 0 },
        { type: 'sync' },
      );
      const refused = await client.untilReady();
      assert.equal(typesOf(refused), '1 2 T E Z');
      assert.equal(sqlstateOf(refused[3]!), '42501');
    } finally {
      client.end();
    }
  });

  it('asks the target for the columns itself when the client executes without a Describe, and keeps that reply to itself', async () => {
    const client = await raw();
    try {
      client.send(
        { type: 'parse', statement: 'by_id', text: 'SELECT id, email FROM people WHERE id = $1', parameterTypes: [] },
        { type: 'bind', portal: '', statement: 'by_id', parameterFormats: [], parameters: [Buffer.from('9')], resultFormats: [] },
        { type: 'execute', portal: '', maxRows: 0 },
        { type: 'bind', portal: '', statement: 'by_id', parameterFormats: [], parameters: [Buffer.from('10')], resultFormats: [] },
        { type: 'execute', portal: '', maxRows: 0 },
        { type: 'sync' },
      );
      const frames = await client.untilReady();
      assert.equal(typesOf(frames), '1 2 D C 2 D C Z', frames.map((f) => f.body.toString('latin1')).join('|'));
      for (const row of frames.filter((f) => String.fromCharCode(f.type) === 'D')) assert.doesNotMatch(row.body.toString('latin1'), /@example\.com/);
    } finally {
      client.end();
    }
  });

  it('masks a portal read in pieces (Execute with max_rows and PortalSuspended)', async () => {
    const client = await raw();
    try {
      client.send(
        { type: 'parse', statement: '', text: 'SELECT email FROM people WHERE id BETWEEN 1 AND 5 ORDER BY id', parameterTypes: [] },
        { type: 'bind', portal: 'p', statement: '', parameterFormats: [], parameters: [], resultFormats: [] },
        { type: 'execute', portal: 'p', maxRows: 2 },
        { type: 'execute', portal: 'p', maxRows: 2 },
        { type: 'execute', portal: 'p', maxRows: 2 },
        { type: 'sync' },
      );
      const frames = await client.untilReady();
      assert.equal(typesOf(frames), '1 2 D D s D D s D C Z', frames.map((f) => f.body.toString('latin1')).join('|'));
      for (const row of frames.filter((f) => String.fromCharCode(f.type) === 'D')) assert.match(row.body.toString('latin1'), /REDACTED/);
    } finally {
      client.end();
    }
  });

  it('masks COPY OUT data, an address split across CopyData messages included', async () => {
    const client = await raw();
    try {
      client.send({ type: 'query', text: 'COPY (SELECT email FROM people WHERE id BETWEEN 1 AND 300 ORDER BY id) TO STDOUT' });
      const frames = await client.untilReady();
      const data = Buffer.concat(frames.filter((f) => String.fromCharCode(f.type) === 'd').map((f) => f.body)).toString('utf8');
      assert.equal(data.split('\n').filter(Boolean).length, 300);
      assert.doesNotMatch(data, /@example\.com/);
      assert.match(typesOf(frames), /^H (d )+c C Z$/);
    } finally {
      client.end();
    }
  });

  it('redacts data the target echoes in an error (a unique violation quotes the duplicate value)', async () => {
    const agent = await through();
    await assert.rejects(agent.query("INSERT INTO people VALUES (5000, 'user1@example.com', 'dup')"), (error: { code?: string; detail?: string; message: string }) => {
      assert.equal(error.code, '23505');
      assert.doesNotMatch(`${error.message} ${error.detail ?? ''}`, /user1@example\.com/);
      assert.match(error.detail ?? '', /\[email\]/);
      return true;
    });
    const recorded = recorder.statements.find((s) => s.text.includes("VALUES (5000"));
    assert.doesNotMatch(recorded?.completion?.errorMessage ?? '', /@example\.com/);
  });

  it('refuses a statement whose policy names a profile the gateway does not have', async () => {
    const agent = await through();
    await assert.rejects(agent.query('SELECT 1 AS missing_profile'), /masking profile 'absent' named by rule all is not loaded/);
  });

  it('leaves results without a profile untouched (and unrecorded)', async () => {
    const agent = await through();
    const { rows } = await agent.query("SELECT 'someone@example.com' AS email");
    assert.deepEqual(rows, [{ email: 'someone@example.com' }]);
  });
});
