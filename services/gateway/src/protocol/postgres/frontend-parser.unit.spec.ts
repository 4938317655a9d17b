import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type FrontendMessage } from './frontend-messages.js';
import { FrontendParser } from './frontend-parser.js';
import { ProtocolViolation, ProtocolViolationCode } from './protocol-violation.js';
import {
  assertParsesInEveryFraming,
  assertViolationInEveryFraming,
  captures,
  feed,
  framings,
  startup,
  syncBytes,
  wire,
} from './wire-bytes.spec.js';

const typedPhase = { prefix: [startup] };
const sync = { type: 'sync' } as const;

describe('FrontendParser: start-up phase', () => {
  it('parses what psql 15 sends: SSLRequest, then StartupMessage, PasswordMessage and Query', () => {
    const { psql } = captures;
    for (const chunks of framings(psql.sslRequest)) {
      const run = feed(chunks);
      assert.equal(run.violation, undefined);
      assert.deepStrictEqual(run.messages, [{ type: 'sslRequest' }]);
    }
    assertParsesInEveryFraming(
      Buffer.concat([psql.startupMessage, psql.passwordMessage, psql.query]),
      [
        {
          type: 'startupMessage',
          protocolVersion: { major: 3, minor: 0 },
          parameters: new Map([
            ['user', 'agent'],
            ['database', 'billing'],
            ['application_name', 'psql'],
          ]),
        },
        { type: 'passwordMessage', password: 'secret' },
        { type: 'query', text: 'select 1' },
      ],
      { prefix: [psql.sslRequest], next: { bytes: wire.typed('X'), messages: [{ type: 'terminate' }] } },
    );
  });

  it('keeps start-up parameters in the order the client sent them', () => {
    const run = feed([captures.psql.startupMessage]);
    const [message] = run.messages;
    assert.equal(message?.type, 'startupMessage');
    assert.deepStrictEqual([...message.parameters.keys()], ['user', 'database', 'application_name']);
  });

  it('parses what node-postgres sends: StartupMessage, PasswordMessage, then Parse/Bind/Describe/Execute/Sync', () => {
    const { nodePostgres } = captures;
    assertParsesInEveryFraming(
      Buffer.concat([nodePostgres.startupMessage, nodePostgres.passwordMessage]),
      [
        {
          type: 'startupMessage',
          protocolVersion: { major: 3, minor: 0 },
          parameters: new Map([
            ['user', 'agent'],
            ['database', 'billing'],
            ['client_encoding', 'UTF8'],
          ]),
        },
        { type: 'passwordMessage', password: 'secret' },
      ],
    );
  });

  it('stays in the start-up phase after SSLRequest and GSSENCRequest: a StartupMessage follows', () => {
    const gssEnc = wire.packet(wire.int32(80877104));
    const ssl = wire.packet(wire.int32(80877103));
    const run = feed([gssEnc, ssl, captures.psql.startupMessage, captures.psql.query]);
    assert.equal(run.violation, undefined);
    assert.deepStrictEqual(
      run.messages.map((message) => message.type),
      ['gssEncRequest', 'sslRequest', 'startupMessage', 'query'],
    );
  });

  it('parses a protocol 3.0 CancelRequest with its 4-byte key', () => {
    const bytes = wire.packet(wire.int32(80877102), wire.int32(4242), wire.hex('0a0b0c0d'));
    assert.equal(bytes.length, 16);
    assertParsesInEveryFraming(bytes, [{ type: 'cancelRequest', processId: 4242, secretKey: wire.hex('0a0b0c0d') }], {
      next: null,
    });
  });

  it('parses protocol 3.2 CancelRequests with keys of 32 and 256 bytes', () => {
    for (const length of [32, 256]) {
      const key = Buffer.alloc(length, 0x5a);
      const bytes = wire.packet(wire.int32(80877102), wire.int32(7), key);
      assertParsesInEveryFraming(bytes, [{ type: 'cancelRequest', processId: 7, secretKey: key }], { next: null });
    }
  });

  it('reads a protocol 3.2 StartupMessage with a _pq_ option, and a newer 3.x for the gateway to negotiate down', () => {
    for (const minor of [2, 99]) {
      const bytes = wire.packet(
        wire.int32((3 << 16) | minor),
        wire.cstring('user'),
        wire.cstring('agent'),
        wire.cstring('_pq_.example'),
        wire.cstring('on'),
        wire.byte(0),
      );
      const expected: FrontendMessage = {
        type: 'startupMessage',
        protocolVersion: { major: 3, minor },
        parameters: new Map([
          ['user', 'agent'],
          ['_pq_.example', 'on'],
        ]),
      };
      assertParsesInEveryFraming(bytes, [expected]);
    }
  });

  it('reads an empty value and a StartupMessage without parameters', () => {
    const bytes = wire.packet(wire.int32(196608), wire.cstring('options'), wire.cstring(''), wire.byte(0));
    assertParsesInEveryFraming(bytes, [
      { type: 'startupMessage', protocolVersion: { major: 3, minor: 0 }, parameters: new Map([['options', '']]) },
    ]);
    assertParsesInEveryFraming(wire.packet(wire.int32(196608), wire.byte(0)), [
      { type: 'startupMessage', protocolVersion: { major: 3, minor: 0 }, parameters: new Map() },
    ]);
  });
});

describe('FrontendParser: typed messages', () => {
  it('parses the unnamed-statement pipeline node-postgres sends for a parameterised query', () => {
    assertParsesInEveryFraming(
      captures.nodePostgres.unnamedPipeline,
      [
        { type: 'parse', statement: '', text: 'SELECT $1::int AS n, $2::text AS t', parameterTypes: [] },
        {
          type: 'bind',
          portal: '',
          statement: '',
          parameterFormats: [0, 0],
          parameters: [Buffer.from('42'), null],
          resultFormats: [0],
        },
        { type: 'describe', target: 'P', name: '' },
        { type: 'execute', portal: '', maxRows: 0 },
        sync,
      ],
      { ...typedPhase, next: { bytes: wire.typed('X'), messages: [{ type: 'terminate' }] } },
    );
  });

  it('parses the named-statement pipeline node-postgres sends for a binary parameter', () => {
    assertParsesInEveryFraming(
      captures.nodePostgres.namedBinaryPipeline,
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
        sync,
      ],
      typedPhase,
    );
  });

  it('parses Parse with parameter type OIDs, up to the largest unsigned OID', () => {
    const bytes = wire.typed(
      'P',
      wire.cstring('stmt1'),
      wire.cstring('SELECT $1, $2, $3'),
      wire.int16(3),
      wire.uint32(23),
      wire.uint32(0),
      wire.uint32(4294967295),
    );
    assertParsesInEveryFraming(
      bytes,
      [{ type: 'parse', statement: 'stmt1', text: 'SELECT $1, $2, $3', parameterTypes: [23, 0, 4294967295] }],
      typedPhase,
    );
  });

  it('parses Execute with a row limit (a cursor fetching 100 rows at a time) and Close of a portal', () => {
    const bytes = Buffer.concat([
      wire.typed('E', wire.cstring('c1'), wire.int32(100)),
      wire.typed('C', wire.byte(0x50), wire.cstring('c1')),
      wire.typed('C', wire.byte(0x53), wire.cstring('stmt1')),
      wire.typed('D', wire.byte(0x53), wire.cstring('stmt1')),
      wire.typed('H'),
    ]);
    assertParsesInEveryFraming(
      bytes,
      [
        { type: 'execute', portal: 'c1', maxRows: 100 },
        { type: 'close', target: 'P', name: 'c1' },
        { type: 'close', target: 'S', name: 'stmt1' },
        { type: 'describe', target: 'S', name: 'stmt1' },
        { type: 'flush' },
      ],
      typedPhase,
    );
  });

  it('parses a multi-statement simple Query in UTF-8', () => {
    const text = "BEGIN; UPDATE invoices SET note = 'größer – 大きい' WHERE id = 1; COMMIT;";
    assertParsesInEveryFraming(wire.typed('Q', wire.cstring(text)), [{ type: 'query', text }], typedPhase);
  });

  it('parses COPY FROM STDIN data, CopyDone and CopyFail', () => {
    const bytes = Buffer.concat([
      wire.typed('d', Buffer.from('1\tacme\n2\tglobex\n')),
      wire.typed('d'),
      wire.typed('d', wire.hex('00ff00')),
      wire.typed('c'),
      wire.typed('f', wire.cstring('aborted by user')),
    ]);
    assertParsesInEveryFraming(
      bytes,
      [
        { type: 'copyData', data: Buffer.from('1\tacme\n2\tglobex\n') },
        { type: 'copyData', data: Buffer.alloc(0) },
        { type: 'copyData', data: wire.hex('00ff00') },
        { type: 'copyDone' },
        { type: 'copyFail', message: 'aborted by user' },
      ],
      typedPhase,
    );
  });

  it('parses a FunctionCall as libpq sends it (binary arguments and result)', () => {
    const bytes = wire.typed(
      'F',
      wire.uint32(1598),
      wire.int16(1),
      wire.int16(1),
      wire.int16(2),
      wire.int32(4),
      wire.hex('00000010'),
      wire.int32(-1),
      wire.int16(1),
    );
    assertParsesInEveryFraming(
      bytes,
      [
        {
          type: 'functionCall',
          functionOid: 1598,
          argumentFormats: [1],
          arguments: [wire.hex('00000010'), null],
          resultFormat: 1,
        },
      ],
      typedPhase,
    );
  });

  it('parses Terminate', () => {
    assertParsesInEveryFraming(wire.typed('X'), [{ type: 'terminate' }], typedPhase);
  });
});

describe('FrontendParser: authentication responses share the type p', () => {
  it('reads p as a PasswordMessage until told otherwise, including an MD5 answer', () => {
    const md5 = 'md5' + '0123456789abcdef0123456789abcdef';
    assertParsesInEveryFraming(wire.typed('p', wire.cstring(md5)), [{ type: 'passwordMessage', password: md5 }], typedPhase);
  });

  it('reads a SCRAM exchange when told which message the server asked for', () => {
    const clientFirst = Buffer.from('n,,n=,r=rOprNGfwEbeRWgbNEkqO');
    const clientFinal = Buffer.from('c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=');
    const initial = wire.typed('p', wire.cstring('SCRAM-SHA-256'), wire.int32(clientFirst.length), clientFirst);
    assertParsesInEveryFraming(
      initial,
      [{ type: 'saslInitialResponse', mechanism: 'SCRAM-SHA-256', data: clientFirst }],
      { ...typedPhase, prepare: (parser) => parser.expectAuthentication('saslInitialResponse'), next: null },
    );
    assertParsesInEveryFraming(wire.typed('p', clientFinal), [{ type: 'saslResponse', data: clientFinal }], {
      ...typedPhase,
      prepare: (parser) => parser.expectAuthentication('saslResponse'),
      next: null,
    });
  });

  it('reads a SASLInitialResponse without initial response (length -1) and a GSSResponse', () => {
    assertParsesInEveryFraming(
      wire.typed('p', wire.cstring('SCRAM-SHA-256'), wire.int32(-1)),
      [{ type: 'saslInitialResponse', mechanism: 'SCRAM-SHA-256', data: null }],
      { ...typedPhase, prepare: (parser) => parser.expectAuthentication('saslInitialResponse') },
    );
    assertParsesInEveryFraming(wire.typed('p', wire.hex('6082')), [{ type: 'gssResponse', data: wire.hex('6082') }], {
      ...typedPhase,
      prepare: (parser) => parser.expectAuthentication('gssResponse'),
    });
  });

  it('applies a new expectation to the next p even when it arrived in the same chunk', () => {
    const clientFirst = Buffer.from('n,,n=,r=abc');
    const chunk = Buffer.concat([
      wire.typed('p', wire.cstring('SCRAM-SHA-256'), wire.int32(clientFirst.length), clientFirst),
      wire.typed('p', Buffer.from('c=biws')),
    ]);
    const parser = new FrontendParser();
    parser.parse(startup, () => undefined);
    parser.expectAuthentication('saslInitialResponse');
    const types: string[] = [];
    const violation = parser.parse(chunk, (message) => {
      types.push(message.type);
      if (message.type === 'saslInitialResponse') {
        parser.expectAuthentication('saslResponse');
      }
    });
    assert.equal(violation, undefined);
    assert.deepStrictEqual(types, ['saslInitialResponse', 'saslResponse']);
  });
});

describe('FrontendParser: chunking', () => {
  it('never overwrites the bytes of a message it delivered when later chunks arrive', () => {
    // The case where pg-protocol's Parser reuses its buffer: a message, then the start of another.
    const first = wire.typed('d', Buffer.alloc(55, 'A'));
    const second = wire.typed('d', Buffer.alloc(65, 'B'));
    const all = Buffer.concat([startup, first, second]);
    const kept: Buffer[] = [];
    const parser = new FrontendParser();
    const split = startup.length + 100;
    for (const chunk of [all.subarray(0, split), all.subarray(split)]) {
      parser.parse(Buffer.from(chunk), (message) => {
        if (message.type === 'copyData') {
          kept.push(message.data);
        }
      });
    }
    assert.deepStrictEqual(kept, [Buffer.alloc(55, 'A'), Buffer.alloc(65, 'B')]);
  });

  it('gathers a CopyData message sent in many small chunks, without allocating its claimed length up front', () => {
    const payload = Buffer.alloc(256 * 1024);
    for (let i = 0; i < payload.length; i++) {
      payload[i] = i % 251;
    }
    const bytes = wire.typed('d', payload);
    const parser = new FrontendParser();
    parser.parse(startup, () => undefined);
    const messages: FrontendMessage[] = [];
    for (let offset = 0; offset < bytes.length; offset += 1000) {
      assert.equal(parser.parse(Buffer.from(bytes.subarray(offset, offset + 1000)), (m) => messages.push(m)), undefined);
    }
    assert.deepStrictEqual(messages, [{ type: 'copyData', data: payload }]);

    const hugeClaim = Buffer.concat([Buffer.from('d'), wire.uint32(1024 * 1024 * 1024 - 1), Buffer.alloc(10)]);
    const before = process.memoryUsage().arrayBuffers;
    const violation = parser.parse(hugeClaim, () => assert.fail('an incomplete message was delivered'));
    assert.equal(violation, undefined);
    assert.ok(process.memoryUsage().arrayBuffers - before < 64 * 1024 * 1024, 'the claimed 1 GiB was allocated');
  });

  it('keeps the rest of a chunk when the callback throws, and parses it first on the next call', () => {
    const parser = new FrontendParser();
    parser.parse(startup, () => undefined);
    const queries = ['one', 'two', 'three', 'four'].map((text) => wire.typed('Q', wire.cstring(text)));
    const seen: string[] = [];
    const callback = (message: FrontendMessage): void => {
      if (message.type === 'query') {
        seen.push(message.text);
        if (message.text === 'one') {
          throw new Error('handler failed');
        }
      }
    };
    const firstChunk = Buffer.concat([queries[0]!, queries[1]!, queries[2]!.subarray(0, 3)]);
    assert.throws(() => parser.parse(firstChunk, callback), /handler failed/);
    assert.equal(parser.parse(Buffer.concat([queries[2]!.subarray(3), queries[3]!]), callback), undefined);
    assert.deepStrictEqual(seen, ['one', 'two', 'three', 'four']);
  });

  it('parses a thousand messages arriving in one chunk', () => {
    const bytes = Buffer.concat(Array.from({ length: 1000 }, (_, i) => wire.typed('Q', wire.cstring(`SELECT ${i}`))));
    const run = feed([bytes], typedPhase);
    assert.equal(run.violation, undefined);
    assert.equal(run.messages.length, 1000);
    assert.deepStrictEqual(run.messages[999], { type: 'query', text: 'SELECT 999' });
  });
});

describe('FrontendParser: hostile input ends in a ProtocolViolation, never an exception', () => {
  it('refuses a typed message whose length is below 4', () => {
    assertViolationInEveryFraming(
      Buffer.concat([Buffer.from('Q'), wire.uint32(3)]),
      {
        code: ProtocolViolationCode.LengthTooShort,
        message:
          "message 'Q' declares a length of 3 bytes, less than the 4 bytes of the length field itself; the client is out of step with the protocol",
      },
      [],
      typedPhase,
    );
  });

  it('refuses a start-up packet shorter than its length and version', () => {
    assertViolationInEveryFraming(wire.uint32(7), {
      code: ProtocolViolationCode.LengthTooShort,
      message: /^start-up packet declares a length of 7 bytes, less than the 8/,
    });
  });

  it('refuses a length above the limit as soon as the header is in, before buffering the body', () => {
    assertViolationInEveryFraming(
      Buffer.concat([Buffer.from('Q'), wire.uint32(2147483647)]),
      {
        code: ProtocolViolationCode.MessageTooLong,
        message:
          "message 'Q' of 2147483647 bytes exceeds the 1073741824-byte limit; if such messages are legitimate, raise the gateway's maxMessageLength",
      },
      [],
      typedPhase,
    );
    assertViolationInEveryFraming(
      Buffer.concat([Buffer.from('d'), wire.uint32(0xffffffff)]),
      { code: ProtocolViolationCode.MessageTooLong, message: /^message 'd' of 4294967295 bytes exceeds/ },
      [],
      typedPhase,
    );
  });

  it('holds Sync, Describe and the other control messages to the small limit, and p to the authentication limit', () => {
    assertViolationInEveryFraming(
      Buffer.concat([Buffer.from('S'), wire.uint32(10_001)]),
      {
        code: ProtocolViolationCode.MessageTooLong,
        message: /^message 'S' of 10001 bytes exceeds the 10000-byte limit; .* maxControlMessageLength$/,
      },
      [],
      typedPhase,
    );
    assertViolationInEveryFraming(
      Buffer.concat([Buffer.from('p'), wire.uint32(65_536)]),
      { code: ProtocolViolationCode.MessageTooLong, message: /^message 'p' of 65536 bytes .* maxAuthenticationMessageLength$/ },
      [],
      typedPhase,
    );
  });

  it('applies configured limits, and accepts a message exactly at the limit', () => {
    const options = { ...typedPhase, parserOptions: { maxMessageLength: 16 } };
    const text = 'x'.repeat(16 - 4 - 1); // length field + text + NUL = 16
    const overLimit = wire.typed('Q', wire.cstring(`${text}y`));
    assertParsesInEveryFraming(wire.typed('Q', wire.cstring(text)), [{ type: 'query', text }], options);
    assertViolationInEveryFraming(
      overLimit,
      { code: ProtocolViolationCode.MessageTooLong, message: /^message 'Q' of 17 bytes exceeds the 16-byte limit/ },
      [],
      options,
    );
    assert.throws(() => new FrontendParser({ maxMessageLength: 2 }), /maxMessageLength must be a whole number of bytes/);
  });

  it('refuses a start-up packet above 10 000 bytes, and recognises a TLS handshake sent without SSLRequest', () => {
    assertViolationInEveryFraming(wire.uint32(10_001), {
      code: ProtocolViolationCode.MessageTooLong,
      message: 'start-up packet of 10001 bytes exceeds the 10000-byte limit; the client is probably not speaking the PostgreSQL protocol',
    });
    assertViolationInEveryFraming(wire.hex('16030100f4010000f00303'), {
      code: ProtocolViolationCode.MessageTooLong,
      message: /looks like a TLS handshake sent without SSLRequest \(libpq sslnegotiation=direct\); connect with sslnegotiation=postgres$/,
    });
  });

  it('refuses an unknown message type from its first byte', () => {
    assertViolationInEveryFraming(
      Buffer.concat([Buffer.from('z'), wire.uint32(4)]),
      { code: ProtocolViolationCode.UnknownMessageType, message: "unknown frontend message type 'z'" },
      [],
      typedPhase,
    );
    assertViolationInEveryFraming(
      wire.hex('16 0301'),
      { code: ProtocolViolationCode.UnknownMessageType, message: /^unknown frontend message type 0x16; it looks like a TLS handshake/ },
      [],
      typedPhase,
    );
    assertViolationInEveryFraming(
      startup,
      { code: ProtocolViolationCode.UnknownMessageType, message: /^unknown frontend message type 0x00; it looks like a start-up/ },
      [],
      typedPhase,
    );
  });

  it('refuses a string without its NUL terminator', () => {
    assertViolationInEveryFraming(
      wire.typed('Q', Buffer.from('SELECT 1')),
      {
        code: ProtocolViolationCode.UnterminatedString,
        message: "Query message ('Q') ends inside its query string: the string has no NUL terminator",
      },
      [],
      typedPhase,
    );
    assertViolationInEveryFraming(
      wire.typed('P', Buffer.from('stmt')),
      { code: ProtocolViolationCode.UnterminatedString, message: /^Parse message \('P'\) ends inside its statement name/ },
      [],
      typedPhase,
    );
    // The NUL of the next message must not be taken for this one's.
    assertViolationInEveryFraming(
      Buffer.concat([wire.typed('Q', Buffer.from('SELECT 1')), syncBytes, wire.typed('Q', wire.cstring(''))]),
      { code: ProtocolViolationCode.UnterminatedString, message: /^Query message/ },
      [],
      typedPhase,
    );
  });

  it('refuses a StartupMessage without the empty name that ends its parameter list', () => {
    assertViolationInEveryFraming(wire.packet(wire.int32(196608), wire.cstring('user'), wire.cstring('agent')), {
      code: ProtocolViolationCode.UnterminatedString,
      message: /^StartupMessage ends inside its parameter list/,
    });
    assertViolationInEveryFraming(wire.packet(wire.int32(196608), wire.cstring('user')), {
      code: ProtocolViolationCode.UnterminatedString,
      message: 'StartupMessage ends inside its value of parameter "user": the string has no NUL terminator',
    });
  });

  it('refuses counts that overrun the message', () => {
    assertViolationInEveryFraming(
      wire.typed('P', wire.cstring(''), wire.cstring('SELECT $1'), wire.int16(5), wire.uint32(23), wire.uint32(25)),
      {
        code: ProtocolViolationCode.MessageTruncated,
        message: "Parse message ('P') announces 5 parameter types, which need at least 20 bytes, but only 8 remain in the message",
      },
      [],
      typedPhase,
    );
    assertViolationInEveryFraming(
      wire.typed('B', wire.cstring(''), wire.cstring(''), wire.int16(0), wire.uint16(65535), wire.int32(-1)),
      { code: ProtocolViolationCode.MessageTruncated, message: /^Bind message \('B'\) announces 65535 parameter values/ },
      [],
      typedPhase,
    );
    assertViolationInEveryFraming(
      wire.typed('B', wire.cstring(''), wire.cstring(''), wire.int16(0), wire.int16(1), wire.int32(1000), Buffer.from('short'), wire.int16(0)),
      {
        code: ProtocolViolationCode.MessageTruncated,
        message: "Bind message ('B') ends before its value of parameter $1: 1000 bytes needed, 7 left",
      },
      [],
      typedPhase,
    );
    assertViolationInEveryFraming(
      wire.typed('B', wire.cstring(''), wire.cstring(''), wire.int16(0), wire.int16(0)),
      { code: ProtocolViolationCode.MessageTruncated, message: /^Bind message \('B'\) ends before its count of result format codes/ },
      [],
      typedPhase,
    );
    assertViolationInEveryFraming(
      wire.typed('E', wire.cstring('')),
      { code: ProtocolViolationCode.MessageTruncated, message: "Execute message ('E') ends before its maximum row count: 4 bytes needed, 0 left" },
      [],
      typedPhase,
    );
  });

  it('refuses bytes left over after the last field', () => {
    assertViolationInEveryFraming(
      wire.typed('S', wire.byte(0)),
      { code: ProtocolViolationCode.TrailingBytes, message: "Sync message ('S') has 1 unexpected bytes after its last field" },
      [],
      typedPhase,
    );
    assertViolationInEveryFraming(
      wire.typed('Q', wire.cstring('SELECT 1'), Buffer.from('; DROP TABLE invoices')),
      { code: ProtocolViolationCode.TrailingBytes, message: /^Query message \('Q'\) has 21 unexpected bytes/ },
      [],
      typedPhase,
    );
  });

  it('refuses field values the protocol does not allow', () => {
    const cases: [Buffer, RegExp][] = [
      [wire.typed('D', Buffer.from('X'), wire.cstring('')), /^Describe message \('D'\) names target 'X'; expected 'S'/],
      [wire.typed('C', wire.byte(0), wire.cstring('')), /^Close message \('C'\) names target byte 0x00/],
      [
        wire.typed('B', wire.cstring(''), wire.cstring(''), wire.int16(0), wire.int16(1), wire.int32(-2), wire.int16(0)),
        /^Bind message \('B'\) gives the value of parameter \$1 a length of -2 bytes; only -1 \(NULL\)/,
      ],
      [
        wire.typed(
          'B',
          wire.cstring(''),
          wire.cstring(''),
          Buffer.concat([wire.int16(2), wire.int16(0), wire.int16(1)]),
          Buffer.concat([wire.int16(3), wire.int32(-1), wire.int32(-1), wire.int32(-1)]),
          wire.int16(0),
        ),
        /^Bind message \('B'\) has 2 parameter format codes for 3 parameters; send none, one for all, or one per parameter$/,
      ],
      [
        wire.typed('F', wire.uint32(1598), wire.int16(2), wire.int16(1), wire.int16(1), wire.int16(1), wire.int32(-1), wire.int16(1)),
        /^FunctionCall message \('F'\) has 2 argument format codes for 1 arguments/,
      ],
    ];
    for (const [bytes, message] of cases) {
      assertViolationInEveryFraming(bytes, { code: ProtocolViolationCode.MalformedMessage, message }, [], typedPhase);
    }
    assertViolationInEveryFraming(
      wire.typed('p', wire.cstring('SCRAM-SHA-256'), wire.int32(-7)),
      { code: ProtocolViolationCode.MalformedMessage, message: /^authentication response \('p'\) declares a SASL initial response of -7 bytes/ },
      [],
      { ...typedPhase, prepare: (parser) => parser.expectAuthentication('saslInitialResponse') },
    );
  });

  it('refuses text that is not UTF-8 with 22021, as PostgreSQL does', () => {
    assertViolationInEveryFraming(
      wire.typed('Q', Buffer.from('SELECT \'caf'), wire.hex('e9'), Buffer.from("'"), wire.byte(0)),
      {
        code: ProtocolViolationCode.InvalidUtf8,
        sqlstate: '22021',
        message: "Query message ('Q') carries a query string that is not valid UTF-8; connect with client_encoding=UTF8",
      },
      [],
      typedPhase,
    );
  });

  it('refuses protocol versions other than 3.x with 0A000, as PostgreSQL does', () => {
    assertViolationInEveryFraming(wire.packet(wire.int32(2 << 16), wire.byte(0)), {
      code: ProtocolViolationCode.UnsupportedProtocolVersion,
      sqlstate: '0A000',
      message: /^unsupported frontend protocol 2\.0: the gateway supports 3\.0 to 3\.2/,
    });
    assertViolationInEveryFraming(wire.packet(wire.int32((1234 << 16) | 5681), wire.byte(0)), {
      code: ProtocolViolationCode.UnsupportedProtocolVersion,
      sqlstate: '0A000',
      message: /^unsupported frontend protocol 1234\.5681/,
    });
  });

  it('refuses a start-up parameter given twice: PostgreSQL would take the last, a check might read the first', () => {
    assertViolationInEveryFraming(
      wire.packet(wire.int32(196608), wire.cstring('user'), wire.cstring('agent'), wire.cstring('user'), wire.cstring('postgres'), wire.byte(0)),
      { code: ProtocolViolationCode.MalformedMessage, message: 'StartupMessage sets parameter "user" twice; send each start-up parameter once' },
    );
  });

  it('refuses cancel keys shorter than 4 or longer than 256 bytes, and encryption requests of the wrong size', () => {
    for (const length of [0, 3, 257]) {
      assertViolationInEveryFraming(wire.packet(wire.int32(80877102), wire.int32(1), Buffer.alloc(length)), {
        code: ProtocolViolationCode.MalformedMessage,
        message: new RegExp(`^CancelRequest carries a secret key of ${length} bytes`),
      });
    }
    assertViolationInEveryFraming(wire.packet(wire.int32(80877102)), {
      code: ProtocolViolationCode.MessageTruncated,
      message: /^CancelRequest ends before its process ID/,
    });
    assertViolationInEveryFraming(wire.packet(wire.int32(80877103), wire.int32(0)), {
      code: ProtocolViolationCode.MalformedMessage,
      message: 'SSLRequest of 12 bytes; it is always 8 bytes long',
    });
  });

  it('refuses a second SSLRequest or GSSENCRequest on one connection', () => {
    const ssl = wire.packet(wire.int32(80877103));
    const gssEnc = wire.packet(wire.int32(80877104));
    for (const request of [ssl, gssEnc]) {
      const run = feed([request, request]);
      assert.equal(run.messages.length, 1);
      assert.equal(run.violation?.code, ProtocolViolationCode.RepeatedEncryptionRequest);
      assert.match(run.violation.message, /^the client sent a second (SSLRequest|GSSENCRequest) on one connection/);
    }
  });

  it('refuses bytes that arrive with an SSLRequest or GSSENCRequest, before the answer (CVE-2021-23214)', () => {
    for (const [code, name] of [
      [80877103, 'SSLRequest'],
      [80877104, 'GSSENCRequest'],
    ] as const) {
      const request = wire.packet(wire.int32(code));
      const injected = Buffer.concat([request, wire.typed('Q', wire.cstring('SELECT 1'))]);
      for (const chunks of framings(injected)) {
        const run = feed(chunks);
        // Only when the request ends a chunk could the server have answered before the rest arrived.
        const requestEndsAChunk = chunks[0]!.length === request.length || chunks.length > 2;
        if (requestEndsAChunk) {
          assert.deepStrictEqual(run.messages[0], { type: name === 'SSLRequest' ? 'sslRequest' : 'gssEncRequest' });
          continue;
        }
        assert.deepStrictEqual(run.messages, [], `chunks of ${chunks.map((c) => c.length).join('+')}`);
        assert.equal(run.violation?.code, ProtocolViolationCode.UnencryptedDataAfterEncryptionRequest);
        assert.equal(run.violation.sqlstate, '08P01');
        assert.match(run.violation.message, new RegExp(`^received unencrypted data after ${name}`));
      }
    }
  });

  it('delivers the messages before a violation and nothing after it', () => {
    const bytes = Buffer.concat([
      wire.typed('Q', wire.cstring('SELECT 1')),
      wire.typed('z'),
      wire.typed('Q', wire.cstring('SELECT 2')),
    ]);
    assertViolationInEveryFraming(
      bytes,
      { code: ProtocolViolationCode.UnknownMessageType, message: "unknown frontend message type 'z'" },
      [{ type: 'query', text: 'SELECT 1' }],
      typedPhase,
    );
  });

  it('returns the same violation for every later chunk and calls no callback', () => {
    const parser = new FrontendParser();
    const first = parser.parse(wire.uint32(3), () => assert.fail('no message expected'));
    assert.ok(first instanceof ProtocolViolation);
    assert.equal(parser.failure, first);
    assert.equal(parser.parse(startup, () => assert.fail('input after a violation was parsed')), first);
  });

  it('survives random corruption of valid traffic: every outcome is messages or a ProtocolViolation', () => {
    const valid = Buffer.concat([
      startup,
      captures.nodePostgres.passwordMessage,
      captures.nodePostgres.unnamedPipeline,
      captures.nodePostgres.namedBinaryPipeline,
      wire.typed('F', wire.uint32(1598), wire.int16(1), wire.int16(1), wire.int16(1), wire.int32(2), wire.hex('0001'), wire.int16(1)),
      wire.typed('d', Buffer.from('row\n')),
      wire.typed('c'),
      wire.typed('X'),
    ]);
    let seed = 0x2545f491;
    const random = (below: number): number => {
      // xorshift32: the same corruptions on every run
      seed ^= seed << 13;
      seed ^= seed >>> 17;
      seed ^= seed << 5;
      return (seed >>> 0) % below;
    };
    let violations = 0;
    for (let round = 0; round < 2000; round++) {
      const corrupted = Buffer.from(valid);
      const flips = 1 + random(4);
      for (let i = 0; i < flips; i++) {
        corrupted[random(corrupted.length)] = random(256);
      }
      const cut = random(corrupted.length);
      const parser = new FrontendParser();
      let result: ProtocolViolation | undefined;
      for (const chunk of [corrupted.subarray(0, cut), corrupted.subarray(cut)]) {
        result = parser.parse(chunk, () => undefined) ?? result;
      }
      if (result !== undefined) {
        assert.ok(result instanceof ProtocolViolation);
        assert.match(result.sqlstate, /^(08P01|0A000|22021)$/);
        violations++;
      }
    }
    assert.ok(violations > 1000, `only ${violations} of 2000 corruptions were noticed`);
  });
});
