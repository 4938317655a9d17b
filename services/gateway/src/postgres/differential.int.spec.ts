import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startPostgres } from '@tracegate/test-harness';
import type { FrontendMessage } from '../protocol/postgres/index.js';
import { BackendType, readCString, type BackendFrame } from './backend-framer.js';
import { AGENT, startGatewayFixture, type GatewayFixture } from './testing/gateway-fixture.js';
import { RawClient, typesOf } from './testing/raw-client.js';

// The same message sequences, sent to the target directly and through the gateway, must get the
// same backend messages: same types in the same order, same bytes — BackendKeyData aside, which
// the gateway issues itself. This is what "the gateway is transparent" means on the wire, and it
// covers extended-protocol Bind with text and binary parameters (psql 15 has no \bind).

/** One round trip: messages to send, then read until this many ReadyForQuery (or this type) arrive. */
interface Step {
  readonly send: readonly FrontendMessage[];
  readonly until?: { readonly ready: number } | { readonly type: string };
}

interface Scenario {
  readonly name: string;
  readonly steps: readonly Step[];
  /** The message types the target itself answers with, so the comparison cannot pass vacuously. */
  readonly expect: string;
}

const q = (text: string): FrontendMessage => ({ type: 'query', text });
const parse = (text: string, statement = '', parameterTypes: number[] = []): FrontendMessage => ({ type: 'parse', statement, text, parameterTypes });
const bind = (statement = '', portal = '', parameters: (Buffer | null)[] = [], parameterFormats: number[] = [], resultFormats: number[] = []): FrontendMessage => ({
  type: 'bind',
  portal,
  statement,
  parameterFormats,
  parameters,
  resultFormats,
});
const describeP = (name = ''): FrontendMessage => ({ type: 'describe', target: 'P', name });
const describeS = (name = ''): FrontendMessage => ({ type: 'describe', target: 'S', name });
const execute = (portal = '', maxRows = 0): FrontendMessage => ({ type: 'execute', portal, maxRows });
const sync: FrontendMessage = { type: 'sync' };
const int4 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
};

const SCENARIOS: readonly Scenario[] = [
  { name: 'simple query', steps: [{ send: [q('SELECT id, label FROM diff_items ORDER BY id')] }], expect: 'T D D D C Z' },
  {
    name: 'multi-statement query with an error in the middle',
    steps: [{ send: [q('SELECT 1 AS a; SELECT 1/0; SELECT 2 AS b')] }],
    expect: 'T D C E Z',
  },
  {
    name: 'extended pipeline: Parse/Describe/Bind (text, then binary parameters and results)/Execute/Sync',
    steps: [
      {
        send: [
          parse('SELECT id, label FROM diff_items WHERE id > $1 ORDER BY id', 'by_id', [23]),
          describeS('by_id'),
          bind('by_id', '', [Buffer.from('1')]),
          describeP(),
          execute(),
          bind('by_id', '', [int4(2)], [1], [1]),
          describeP(),
          execute(),
          sync,
        ],
      },
    ],
    expect: '1 t T 2 T D D C 2 T D C Z',
  },
  {
    name: 'an error in a batch: everything is skipped until Sync, then the connection works',
    steps: [{ send: [parse('SELECT 1/0'), bind(), execute(), parse('SELECT 1'), bind(), execute(), sync] }, { send: [q('SELECT 2')] }],
    expect: '1 E Z T D C Z', // 1/0 is folded when the plan is made: Bind fails
  },
  {
    name: 'Execute with max_rows: PortalSuspended until the rows run out',
    steps: [{ send: [parse('SELECT g FROM generate_series(1, 5) AS g'), bind('', 'paged'), execute('paged', 2), execute('paged', 2), execute('paged', 2), sync] }],
    expect: '1 2 D D s D D s D C Z',
  },
  {
    name: 'Close a statement and a portal; a Bind to the closed statement fails',
    steps: [
      { send: [parse('SELECT 1 AS one', 'closing'), sync] },
      { send: [{ type: 'close', target: 'S', name: 'closing' }, { type: 'close', target: 'P', name: 'never-opened' }, sync] },
      { send: [bind('closing'), execute(), sync] },
    ],
    expect: '1 Z 3 3 Z E Z',
  },
  {
    name: 'empty queries, simple and extended',
    steps: [{ send: [q('')] }, { send: [q(';')] }, { send: [parse(''), bind(), execute(), sync] }],
    expect: 'I Z I Z 1 2 I Z',
  },
  {
    name: 'an error inside a transaction block: 25P02 until ROLLBACK',
    steps: [{ send: [q('BEGIN')] }, { send: [q('SELECT 1/0')] }, { send: [q('SELECT 1')] }, { send: [q('ROLLBACK')] }],
    expect: 'C Z E Z E Z C Z',
  },
  {
    name: 'COPY FROM STDIN ended by CopyFail',
    steps: [
      { send: [q('COPY diff_items FROM STDIN')], until: { type: 'G' } },
      { send: [{ type: 'copyData', data: Buffer.from('9\tnine\n') }, { type: 'copyFail', message: 'the client gave up' }] },
      { send: [q('SELECT count(*) FROM diff_items')] },
    ],
    expect: 'G E Z T D C Z',
  },
  {
    name: 'COPY FROM STDIN with CopyDone in a transaction that is rolled back',
    steps: [
      { send: [q('BEGIN')] },
      { send: [q('COPY diff_items FROM STDIN')], until: { type: 'G' } },
      { send: [{ type: 'copyData', data: Buffer.from('7\tseven\n8\teight\n') }, { type: 'copyDone' }] },
      { send: [q('SELECT count(*) FROM diff_items')] },
      { send: [q('ROLLBACK')] },
    ],
    expect: 'C Z G C Z T D C Z C Z',
  },
  { name: 'COPY TO STDOUT', steps: [{ send: [q('COPY (SELECT id, label FROM diff_items ORDER BY id) TO STDOUT')] }], expect: 'H d d d c C Z' },
  {
    name: 'Flush sends what is ready before Sync',
    steps: [{ send: [parse('SELECT 42 AS answer'), bind(), execute(), { type: 'flush' }], until: { type: 'C' } }, { send: [sync] }],
    expect: '1 2 D C Z',
  },
  {
    name: 'SET reports the new value with ParameterStatus',
    steps: [{ send: [q("SET application_name = 'differential-set'")] }, { send: [q("SET TimeZone = 'Asia/Tokyo'")] }],
    expect: 'C S Z C S Z',
  },
  {
    name: 'a RAISE NOTICE arrives as NoticeResponse',
    steps: [{ send: [q("DO $$ BEGIN RAISE NOTICE 'differential notice %', 7; END $$")] }],
    expect: 'N C Z',
  },
  {
    name: 'a large result whose rows cross chunk boundaries',
    steps: [{ send: [q("SELECT g, repeat(md5(g::text), 40) AS filler FROM generate_series(1, 3000) AS g")] }],
    expect: ['T', ...Array<string>(3000).fill('D'), 'C', 'Z'].join(' '),
  },
  {
    name: 'a constraint violation: every ErrorResponse field (detail, schema, table, constraint) as the target sends it',
    steps: [{ send: [q("INSERT INTO diff_items VALUES (1, 'duplicate')")] }],
    expect: 'E Z',
  },
  {
    name: 'extended protocol inside a transaction block: statuses T, then E after an error, until ROLLBACK',
    steps: [
      { send: [parse('BEGIN'), bind(), execute(), sync] },
      { send: [parse('SELECT 1 AS in_tx'), bind(), execute(), sync] },
      { send: [parse('SELECT missing_column FROM diff_items'), bind(), execute(), sync] },
      { send: [parse('SELECT 1'), bind(), execute(), sync] },
      { send: [parse('ROLLBACK'), bind(), execute(), sync] },
    ],
    expect: '1 2 C Z 1 2 D C Z E Z E Z 1 2 C Z',
  },
  {
    name: 'a suspended portal is gone after Sync ends its implicit transaction',
    steps: [{ send: [parse('SELECT g FROM generate_series(1, 3) AS g'), bind('', 'short-lived'), execute('short-lived', 1), sync] }, { send: [execute('short-lived', 1), sync] }],
    expect: '1 2 D s Z E Z',
  },
  {
    name: 'a Bind with the wrong number of parameters, and Describe of a statement that does not exist',
    steps: [{ send: [parse('SELECT $1::int AS one', 'one_param'), bind('one_param'), execute(), sync] }, { send: [describeS('no_such_statement'), sync] }],
    expect: '1 E Z E Z',
  },
  {
    name: 'COPY TO STDOUT and COPY FROM STDIN through the extended protocol',
    steps: [
      { send: [parse('COPY (SELECT id FROM diff_items ORDER BY id) TO STDOUT'), bind(), execute(), sync] },
      { send: [q('BEGIN')] },
      { send: [parse('COPY diff_items FROM STDIN'), bind(), execute(), { type: 'flush' }], until: { type: 'G' } },
      { send: [{ type: 'copyData', data: Buffer.from('20\ttwenty\n') }, { type: 'copyDone' }, sync] },
      { send: [q('ROLLBACK')] },
    ],
    expect: '1 2 H d d d c C Z C Z 1 2 G C Z C Z',
  },
];

/** Runs every step, returning what the server answered, message by message. */
async function play(client: RawClient, steps: readonly Step[]): Promise<BackendFrame[]> {
  const out: BackendFrame[] = [];
  for (const step of steps) {
    client.send(...step.send);
    const until = step.until ?? { ready: 1 };
    if ('ready' in until) {
      for (let i = 0; i < until.ready; i += 1) out.push(...(await client.untilReady()));
    } else {
      for (;;) {
        const frame = await client.next();
        out.push(frame);
        if (String.fromCharCode(frame.type) === until.type) break;
      }
    }
  }
  return out;
}

/** A message as text for comparison: its type and its bytes, BackendKeyData's key elided. */
function render(frame: BackendFrame): string {
  const type = String.fromCharCode(frame.type);
  if (frame.type === BackendType.BackendKeyData) return `${type} <key>`;
  return `${type} ${frame.body.toString('latin1').replaceAll('\0', '|')}`;
}

describe('differential: the gateway answers exactly as the target does', () => {
  let target: Awaited<ReturnType<typeof startPostgres>>;
  let gateway: GatewayFixture;
  let direct: RawClient;
  let through: RawClient;
  let directGreeting: BackendFrame[];
  let gatewayGreeting: BackendFrame[];

  before(async () => {
    target = await startPostgres();
    gateway = await startGatewayFixture(target);
    const setup = await gateway.direct();
    await setup.query('CREATE TABLE diff_items (id int PRIMARY KEY, label text)');
    await setup.query("INSERT INTO diff_items VALUES (1, 'one'), (2, 'two'), (3, 'three')");
    await setup.end();
    const url = gateway.targetUrl;
    direct = await RawClient.connect(Number(url.port), url.hostname);
    directGreeting = await direct.login({ user: decodeURIComponent(url.username), database: 'billing', application_name: 'differential' }, decodeURIComponent(url.password));
    through = await RawClient.connectTls(gateway.port);
    gatewayGreeting = await through.login({ user: AGENT.name, database: 'billing', application_name: 'differential' }, AGENT.key);
  });

  after(async () => {
    direct?.end();
    through?.end();
    await Promise.all([direct?.closed, through?.closed]);
    await gateway?.close();
    await target?.stop();
  });

  it('greets with the target\'s ParameterStatus values, its own BackendKeyData and ReadyForQuery', () => {
    assert.match(typesOf(directGreeting), /^(S )+K Z$/);
    assert.deepEqual(gatewayGreeting.map(render).sort(), directGreeting.map(render).sort());
    const applicationName = gatewayGreeting.find((f) => f.type === BackendType.ParameterStatus && readCString(f.body) === 'application_name');
    assert.ok(applicationName?.body.includes('differential'), 'application_name was passed through to the target');
  });

  for (const scenario of SCENARIOS) {
    it(scenario.name, async () => {
      const expected = await play(direct, scenario.steps);
      assert.equal(typesOf(expected), scenario.expect, 'the target answers the sequence as this test expects');
      const actual = await play(through, scenario.steps);
      assert.deepEqual(actual.map(render), expected.map(render));
    });
  }
});
