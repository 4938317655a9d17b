import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { startPostgres, type PostgresServer } from '@tracegate/test-harness';
import { compileProfile, type CompiledMaskingProfile } from './compiled-profile.js';
import { loadSqlParser } from './lineage.js';
import type { ResultColumn, ResultMaskPlan } from './result-plan.js';

/**
 * The engine between a real PostgreSQL and a real driver (node-postgres), in text and in binary
 * result format: a small relay that frames the backend's messages, plans each result at its
 * RowDescription and rewrites every DataRow with maskDataRow. The driver must parse every masked
 * value of every type (jsonb's version byte, bytea, NULLs, recomputed lengths), and no raw value
 * may reach it. (The gateway does the same with its own framer; this proves the engine alone.)
 */
class MaskingRelay {
  readonly server: net.Server;
  rowsMasked = 0;

  constructor(
    private readonly profile: CompiledMaskingProfile,
    private readonly target: { host: string; port: number },
  ) {
    this.server = net.createServer((client) => this.relay(client));
  }

  private relay(client: net.Socket): void {
    const upstream = net.connect(this.target.port, this.target.host);
    let statement = '';
    let plan: ResultMaskPlan | undefined;
    let started = false;
    let fromClient = Buffer.alloc(0);
    let fromServer = Buffer.alloc(0);
    client.on('data', (chunk: Buffer) => {
      upstream.write(chunk);
      // Frontend messages, to know the statement text: Query ('Q') and Parse ('P').
      fromClient = Buffer.concat([fromClient, chunk]);
      for (;;) {
        if (!started) {
          if (fromClient.length < 4) break;
          const length = fromClient.readInt32BE(0);
          if (fromClient.length < length) break;
          fromClient = fromClient.subarray(length);
          started = true;
          continue;
        }
        if (fromClient.length < 5) break;
        const length = fromClient.readInt32BE(1);
        if (fromClient.length < 1 + length) break;
        const body = fromClient.subarray(5, 1 + length);
        if (fromClient[0] === 0x51) statement = body.toString('utf8', 0, body.indexOf(0));
        if (fromClient[0] === 0x50) {
          const nameEnd = body.indexOf(0);
          statement = body.toString('utf8', nameEnd + 1, body.indexOf(0, nameEnd + 1));
        }
        fromClient = fromClient.subarray(1 + length);
      }
    });
    upstream.on('data', (chunk: Buffer) => {
      fromServer = Buffer.concat([fromServer, chunk]);
      const out: Buffer[] = [];
      for (;;) {
        if (fromServer.length < 5) break;
        const length = fromServer.readInt32BE(1);
        if (fromServer.length < 1 + length) break;
        let message: Buffer = fromServer.subarray(0, 1 + length);
        fromServer = fromServer.subarray(1 + length);
        if (message[0] === 0x54) {
          const result = this.profile.planResult(rowDescription(message), statement);
          if ('refused' in result) throw new Error(result.refused);
          plan = result;
        } else if (message[0] === 0x44 && plan?.active) {
          message = plan.maskDataRow(message);
          this.rowsMasked++;
        }
        out.push(message);
      }
      if (out.length > 0) client.write(Buffer.concat(out));
    });
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
  }
}

// RowDescription (B): Int16 count, then per field: name, Int32 table OID, Int16 column, Int32 type OID, Int16 size, Int32 modifier, Int16 format.
function rowDescription(message: Buffer): ResultColumn[] {
  const count = message.readInt16BE(5);
  const columns: ResultColumn[] = [];
  let at = 7;
  for (let i = 0; i < count; i++) {
    const end = message.indexOf(0, at);
    const name = message.toString('utf8', at, end);
    at = end + 1;
    columns.push({ name, tableOid: message.readInt32BE(at), columnId: message.readInt16BE(at + 4), typeOid: message.readInt32BE(at + 6), format: message.readInt16BE(at + 16) === 1 ? 1 : 0 });
    at += 18;
  }
  return columns;
}

describe('the engine between PostgreSQL and node-postgres', () => {
  let postgres: PostgresServer;
  let relay: MaskingRelay;
  let port: number;
  let url: URL;

  before(async () => {
    await loadSqlParser();
    postgres = await startPostgres();
    url = new URL(await postgres.createDatabase());
    const setup = new pg.Client({ connectionString: url.toString() });
    await setup.connect();
    await setup.query(`CREATE TABLE customers (
      id int PRIMARY KEY, name text, email varchar(200), card_number text, ssn text, note text,
      profile jsonb, avatar bytea, card_as_number bigint, balance numeric)`);
    await setup.query(`INSERT INTO customers
      SELECT i, 'Customer ' || i, 'customer' || i || '@example.com', '4111111111111111', '123-45-' || (1000 + i),
             CASE WHEN i % 2 = 0 THEN 'call +1 415 555 2671 about key AKIAIOSFODNN7EXAMPLE' ELSE 'nothing to see' END,
             jsonb_build_object('tier', 'gold', 'contact', jsonb_build_object('email', 'c' || i || '@example.org', 'phone', '+44 20 7946 0958')),
             '\\xdeadbeef', 4111111111111111, 12.5
      FROM generate_series(1, 200) AS i`);
    await setup.end();
    const profile = compileProfile(
      {
        name: 'billing',
        version: '1',
        rules: [
          { name: 'emails', column: 'customers.email', strategy: 'hash' },
          { name: 'cards', column: 'card_number', strategy: 'partial', keepLast: 4 },
          { name: 'ssn', column: 'ssn', strategy: 'redact' },
          { name: 'avatars', column: 'avatar', strategy: 'redact' },
          { name: 'contact', jsonPath: '$..email', strategy: 'hash' },
          { name: 'free-text', detector: '*', strategy: 'redact' },
        ],
      },
      { hashKey: randomBytes(32) },
    );
    relay = new MaskingRelay(profile, { host: url.hostname, port: Number(url.port) });
    await new Promise<void>((resolve) => relay.server.listen(0, '127.0.0.1', resolve));
    port = (relay.server.address() as net.AddressInfo).port;
  });

  after(async () => {
    relay.server.close();
    await postgres.stop();
  });

  async function query(sql: string, binary: boolean): Promise<Record<string, unknown>[]> {
    // `binary` (results in binary format) is a node-postgres option its types do not declare.
    const config = { host: '127.0.0.1', port, user: decodeURIComponent(url.username), password: decodeURIComponent(url.password), database: url.pathname.slice(1), binary };
    const client = new pg.Client(config as pg.ClientConfig);
    await client.connect();
    try {
      // A parameter makes node-postgres use the extended protocol, where `binary` asks for binary results.
      return (await client.query({ text: sql, values: binary ? [0] : undefined })).rows as Record<string, unknown>[];
    } finally {
      await client.end();
    }
  }

  for (const binary of [false, true]) {
    const format = binary ? 'binary' : 'text';

    it(`masks every row in ${format} format, and the driver parses every masked value`, async () => {
      const rows = await query(`SELECT id, name, email, card_number, ssn, note, profile, avatar, card_as_number, balance FROM customers WHERE id > ${binary ? '$1' : '0'} ORDER BY id`, binary);
      assert.equal(rows.length, 200);
      const raw = JSON.stringify(rows.map((r) => ({ ...r, avatar: String(r['avatar']) })));
      assert.doesNotMatch(raw, /customer\d+@example\.com|c\d+@example\.org|123-45-1\d{3}|4111111111111111|AKIAIOSFODNN7EXAMPLE|415 555 2671/);
      const first = rows[1]!;
      assert.equal(first['name'], 'Customer 2');
      assert.match(String(first['email']), /^h_[0-9a-f]{24}$/);
      assert.equal(first['card_number'], '************1111');
      assert.equal(first['ssn'], '[REDACTED]');
      assert.equal(first['note'], 'call [REDACTED:phone] about key [REDACTED:aws-access-key]');
      // node-postgres has no binary jsonb parser: it hands over the bytes, version byte first.
      const jsonb = first['profile'];
      const profile = (typeof jsonb === 'string' ? (assert.equal(jsonb[0], '\x01'), JSON.parse(jsonb.slice(1))) : jsonb) as { tier: string; contact: { email: string; phone: string } };
      assert.equal(profile.tier, 'gold');
      assert.match(profile.contact.email, /^h_/);
      assert.equal(profile.contact.phone, '[REDACTED:phone]');
      assert.equal(Buffer.isBuffer(first['avatar']) ? (first['avatar'] as Buffer).toString() : first['avatar'], '[REDACTED]');
      // A card kept as a number: the detector finds it, and a number column can only be NULL.
      assert.equal(first['card_as_number'], null);
      assert.equal(String(first['balance']), '12.5');
      assert.equal(rows[0]!['note'], 'nothing to see');
    });

    it(`follows a masked column through an alias and a function in ${format} format`, async () => {
      const rows = await query(`SELECT email AS contact, reverse(card_number) AS r, upper(ssn) AS s FROM customers WHERE id > ${binary ? '$1' : '0'} ORDER BY id LIMIT 3`, binary);
      for (const row of rows) {
        assert.match(String(row['contact']), /^h_/);
        assert.equal(row['r'], '[REDACTED]');
        assert.equal(row['s'], '[REDACTED]');
      }
    });
  }
});
