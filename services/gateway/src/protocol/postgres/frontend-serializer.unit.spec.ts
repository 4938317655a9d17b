import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { serialize as pgSerialize } from 'pg-protocol';
import { type AuthenticationResponseType, type FrontendMessage, PROTOCOL_3_0, PROTOCOL_3_2 } from './frontend-messages.js';
import { serializeFrontend } from './frontend-serializer.js';
import { assertParsesInEveryFraming, captures, feed, startup, wire } from './wire-bytes.spec.js';

interface Sample {
  readonly message: FrontendMessage;
  /** How the parser must read 'p' for this message. */
  readonly expect?: AuthenticationResponseType;
}

const samples: readonly Sample[] = [
  {
    message: {
      type: 'startupMessage',
      protocolVersion: PROTOCOL_3_0,
      parameters: new Map([
        ['user', 'agent'],
        ['database', 'billing'],
        ['application_name', 'psql'],
        ['options', '-c statement_timeout=5s'],
      ]),
    },
  },
  {
    message: {
      type: 'startupMessage',
      protocolVersion: PROTOCOL_3_2,
      parameters: new Map([
        ['user', 'agent'],
        ['_pq_.example', ''],
      ]),
    },
  },
  { message: { type: 'startupMessage', protocolVersion: PROTOCOL_3_0, parameters: new Map() } },
  { message: { type: 'sslRequest' } },
  { message: { type: 'gssEncRequest' } },
  { message: { type: 'cancelRequest', processId: 4242, secretKey: wire.hex('0a0b0c0d') } },
  { message: { type: 'cancelRequest', processId: -1, secretKey: Buffer.alloc(32, 0xa5) } },
  { message: { type: 'cancelRequest', processId: 1, secretKey: Buffer.alloc(256, 0x01) } },
  { message: { type: 'query', text: 'SELECT 1; SELECT 2' } },
  { message: { type: 'query', text: '' } },
  { message: { type: 'query', text: "SELECT 'naïve 🐘'" } },
  { message: { type: 'parse', statement: '', text: 'SELECT $1', parameterTypes: [] } },
  { message: { type: 'parse', statement: 's1', text: 'SELECT $1, $2, $3', parameterTypes: [23, 0, 4294967295] } },
  {
    message: {
      type: 'bind',
      portal: '',
      statement: '',
      parameterFormats: [],
      parameters: [],
      resultFormats: [],
    },
  },
  {
    message: {
      type: 'bind',
      portal: 'c1',
      statement: 's1',
      parameterFormats: [0, 1, 0],
      parameters: [Buffer.from('42'), wire.hex('00000007'), null],
      resultFormats: [1, 0],
    },
  },
  {
    message: {
      type: 'bind',
      portal: '',
      statement: 's1',
      parameterFormats: [1],
      parameters: [Buffer.alloc(0), Buffer.alloc(70_000, 0x61)],
      resultFormats: [1],
    },
  },
  { message: { type: 'describe', target: 'S', name: 's1' } },
  { message: { type: 'describe', target: 'P', name: '' } },
  { message: { type: 'execute', portal: '', maxRows: 0 } },
  { message: { type: 'execute', portal: 'c1', maxRows: 100 } },
  { message: { type: 'close', target: 'S', name: 's1' } },
  { message: { type: 'close', target: 'P', name: 'c1' } },
  { message: { type: 'sync' } },
  { message: { type: 'flush' } },
  { message: { type: 'terminate' } },
  { message: { type: 'copyData', data: Buffer.from('1\tacme\n') } },
  { message: { type: 'copyData', data: Buffer.alloc(0) } },
  { message: { type: 'copyDone' } },
  { message: { type: 'copyFail', message: 'COPY aborted by the client' } },
  {
    message: {
      type: 'functionCall',
      functionOid: 1598,
      argumentFormats: [1],
      arguments: [wire.hex('00000010'), null],
      resultFormat: 1,
    },
  },
  { message: { type: 'functionCall', functionOid: 2, argumentFormats: [], arguments: [], resultFormat: 0 } },
  { message: { type: 'passwordMessage', password: 'tg_live_3f9a' } },
  { message: { type: 'passwordMessage', password: '' } },
  {
    message: { type: 'saslInitialResponse', mechanism: 'SCRAM-SHA-256', data: Buffer.from('n,,n=,r=rOprNGfwEbeRWgbNEkqO') },
    expect: 'saslInitialResponse',
  },
  { message: { type: 'saslInitialResponse', mechanism: 'SCRAM-SHA-256', data: null }, expect: 'saslInitialResponse' },
  { message: { type: 'saslInitialResponse', mechanism: 'SCRAM-SHA-256', data: Buffer.alloc(0) }, expect: 'saslInitialResponse' },
  { message: { type: 'saslResponse', data: Buffer.from('c=biws,r=abc,p=xyz') }, expect: 'saslResponse' },
  { message: { type: 'gssResponse', data: wire.hex('608206') }, expect: 'gssResponse' },
];

const startupPacketTypes = new Set(['startupMessage', 'sslRequest', 'gssEncRequest', 'cancelRequest']);

describe('serializeFrontend', () => {
  it('covers every frontend message type in these samples', () => {
    const allTypes: FrontendMessage['type'][] = [
      'startupMessage', 'sslRequest', 'gssEncRequest', 'cancelRequest', 'query', 'parse', 'bind', 'describe',
      'execute', 'close', 'sync', 'flush', 'terminate', 'copyData', 'copyDone', 'copyFail', 'functionCall',
      'passwordMessage', 'saslInitialResponse', 'saslResponse', 'gssResponse',
    ];
    assert.deepStrictEqual(new Set(samples.map((sample) => sample.message.type)), new Set(allTypes));
  });

  for (const [index, { message, expect }] of samples.entries()) {
    const size = serializeFrontend(message).length;
    const framing = size > 20_000 ? 'cut at each byte of its header and near its end' : 'in every framing';
    it(`round-trips sample ${index + 1} (${message.type}, ${size} bytes) through the parser ${framing}`, () => {
      const startupPacket = startupPacketTypes.has(message.type);
      // After SSLRequest, GSSENCRequest or CancelRequest nothing may follow in the same chunk.
      const lastOfItsConnection = startupPacket && message.type !== 'startupMessage';
      const bytes = serializeFrontend(message);
      if (bytes.length > 20_000) {
        // Too big to cut at every byte: cut at every byte of its headers and its end instead.
        assertLargeRoundTrip(bytes, message);
        return;
      }
      assertParsesInEveryFraming(bytes, [message], {
        prefix: startupPacket ? [] : [startup],
        ...(expect === undefined ? {} : { prepare: (parser) => parser.expectAuthentication(expect) }),
        ...(lastOfItsConnection ? { next: null } : {}),
      });
    });
  }

  it('produces the bytes psql 15 (libpq) sent', () => {
    assert.deepStrictEqual(serializeFrontend({ type: 'sslRequest' }), captures.psql.sslRequest);
    assert.deepStrictEqual(
      serializeFrontend({
        type: 'startupMessage',
        protocolVersion: PROTOCOL_3_0,
        parameters: new Map([
          ['user', 'agent'],
          ['database', 'billing'],
          ['application_name', 'psql'],
        ]),
      }),
      captures.psql.startupMessage,
    );
    assert.deepStrictEqual(serializeFrontend({ type: 'passwordMessage', password: 'secret' }), captures.psql.passwordMessage);
    assert.deepStrictEqual(serializeFrontend({ type: 'query', text: 'select 1' }), captures.psql.query);
  });

  it('produces the bytes node-postgres sent for an extended-protocol pipeline', () => {
    const pipeline = Buffer.concat(
      (
        [
          { type: 'parse', statement: 'by-id', text: 'SELECT * FROM invoices WHERE id = $1', parameterTypes: [] },
          {
            type: 'bind',
            portal: '',
            statement: 'by-id',
            parameterFormats: [1],
            parameters: [wire.hex('00000007')],
            resultFormats: [0],
          },
          { type: 'describe', target: 'P', name: '' },
          { type: 'execute', portal: '', maxRows: 0 },
          { type: 'sync' },
        ] satisfies FrontendMessage[]
      ).map(serializeFrontend),
    );
    assert.deepStrictEqual(pipeline, captures.nodePostgres.namedBinaryPipeline);
  });

  it("agrees byte for byte with pg-protocol's serializer wherever both can express a message", () => {
    const pairs: [FrontendMessage, Buffer][] = [
      [
        {
          type: 'startupMessage',
          protocolVersion: PROTOCOL_3_0,
          parameters: new Map([
            ['user', 'agent'],
            ['database', 'billing'],
            ['client_encoding', 'UTF8'],
          ]),
        },
        pgSerialize.startup({ user: 'agent', database: 'billing' }),
      ],
      [{ type: 'sslRequest' }, pgSerialize.requestSsl()],
      [{ type: 'cancelRequest', processId: 4242, secretKey: wire.int32(0x0a0b0c0d) }, pgSerialize.cancel(4242, 0x0a0b0c0d)],
      [{ type: 'passwordMessage', password: 'secret' }, pgSerialize.password('secret')],
      [
        { type: 'saslInitialResponse', mechanism: 'SCRAM-SHA-256', data: Buffer.from('n,,n=,r=abc') },
        pgSerialize.sendSASLInitialResponseMessage('SCRAM-SHA-256', 'n,,n=,r=abc'),
      ],
      [{ type: 'saslResponse', data: Buffer.from('c=biws,r=abc,p=xyz') }, pgSerialize.sendSCRAMClientFinalMessage('c=biws,r=abc,p=xyz')],
      [{ type: 'query', text: 'SELECT 1' }, pgSerialize.query('SELECT 1')],
      [
        { type: 'parse', statement: 's1', text: 'SELECT $1, $2', parameterTypes: [23, 25] },
        pgSerialize.parse({ name: 's1', text: 'SELECT $1, $2', types: [23, 25] }),
      ],
      [
        {
          type: 'bind',
          portal: 'c1',
          statement: 's1',
          parameterFormats: [0, 0, 1],
          parameters: [Buffer.from('42'), null, wire.hex('0102')],
          resultFormats: [1],
        },
        pgSerialize.bind({ portal: 'c1', statement: 's1', values: ['42', null, wire.hex('0102')], binary: true }),
      ],
      [{ type: 'execute', portal: '', maxRows: 0 }, pgSerialize.execute()],
      [{ type: 'execute', portal: 'c1', maxRows: 100 }, pgSerialize.execute({ portal: 'c1', rows: 100 })],
      [{ type: 'describe', target: 'S', name: 's1' }, pgSerialize.describe({ type: 'S', name: 's1' })],
      [{ type: 'describe', target: 'P', name: '' }, pgSerialize.describe({ type: 'P' })],
      [{ type: 'close', target: 'P', name: 'c1' }, pgSerialize.close({ type: 'P', name: 'c1' })],
      [{ type: 'sync' }, pgSerialize.sync()],
      [{ type: 'flush' }, pgSerialize.flush()],
      [{ type: 'terminate' }, pgSerialize.end()],
      [{ type: 'copyData', data: Buffer.from('1\tacme\n') }, pgSerialize.copyData(Buffer.from('1\tacme\n'))],
      [{ type: 'copyDone' }, pgSerialize.copyDone()],
      [{ type: 'copyFail', message: 'stop' }, pgSerialize.copyFail('stop')],
    ];
    for (const [message, expected] of pairs) {
      assert.deepStrictEqual(serializeFrontend(message), expected, message.type);
    }
  });

  it('refuses values the wire cannot carry, and stays usable after refusing', () => {
    const refusals: [FrontendMessage, RegExp][] = [
      [{ type: 'query', text: 'SELECT 1\0; DROP TABLE invoices' }, /the query string contains a NUL character/],
      [
        { type: 'startupMessage', protocolVersion: PROTOCOL_3_0, parameters: new Map([['', 'x']]) },
        /a start-up parameter name cannot be empty/,
      ],
      [{ type: 'cancelRequest', processId: 1, secretKey: Buffer.alloc(3) }, /a cancel secret key is 4 to 256 bytes, not 3/],
      [{ type: 'cancelRequest', processId: 1, secretKey: Buffer.alloc(257) }, /not 257/],
      [{ type: 'execute', portal: '', maxRows: 2 ** 31 }, /the maximum row count must be an integer from -2147483648 to 2147483647/],
      [{ type: 'parse', statement: '', text: 'SELECT $1', parameterTypes: [-1] }, /the parameter type OID must be an integer from 0/],
      [{ type: 'parse', statement: '', text: '', parameterTypes: new Array<number>(65_536).fill(0) }, /65536 parameter types exceed the protocol's maximum of 65535/],
      [
        { type: 'bind', portal: '', statement: '', parameterFormats: [0, 1], parameters: [null], resultFormats: [] },
        /2 parameter format codes for 1 parameters/,
      ],
      [
        { type: 'bind', portal: '', statement: 's1\0', parameterFormats: [], parameters: [], resultFormats: [] },
        /the statement name contains a NUL character/,
      ],
      [
        { type: 'functionCall', functionOid: 1, argumentFormats: [], arguments: [], resultFormat: 70_000 },
        /the result format code must be an integer from -32768 to 32767/,
      ],
    ];
    for (const [message, error] of refusals) {
      assert.throws(() => serializeFrontend(message), (thrown: unknown) => thrown instanceof RangeError && error.test(thrown.message));
      // Nothing of the refused message may leak into the next one.
      assert.deepStrictEqual(serializeFrontend({ type: 'query', text: 'select 1' }), captures.psql.query);
    }
  });
});

function assertLargeRoundTrip(bytes: Buffer, message: FrontendMessage): void {
  const cuts = [...Array.from({ length: 40 }, (_, i) => i + 1), Math.floor(bytes.length / 2), bytes.length - 1];
  for (const cut of cuts) {
    const run = feed([Buffer.from(bytes.subarray(0, cut)), Buffer.from(bytes.subarray(cut))], { prefix: [startup] });
    assert.equal(run.violation, undefined, `cut at ${cut}: ${run.violation?.message}`);
    assert.deepStrictEqual(run.messages, [message], `cut at ${cut}`);
  }
}
