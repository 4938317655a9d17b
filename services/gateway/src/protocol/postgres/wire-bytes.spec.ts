// Test support, not a test: builds wire bytes by hand and feeds them to a parser in every framing.
// (Named *.spec.ts so that Nx keeps it out of production inputs; the test globs only run *.unit.spec.js.)
import assert from 'node:assert/strict';
import { type FrontendMessage } from './frontend-messages.js';
import { FrontendParser, type FrontendParserOptions } from './frontend-parser.js';
import { type ProtocolViolation, type ProtocolViolationCode } from './protocol-violation.js';

export const wire = {
  byte(value: number): Buffer {
    return Buffer.of(value);
  },
  int16(value: number): Buffer {
    const bytes = Buffer.alloc(2);
    bytes.writeInt16BE(value);
    return bytes;
  },
  uint16(value: number): Buffer {
    const bytes = Buffer.alloc(2);
    bytes.writeUInt16BE(value);
    return bytes;
  },
  int32(value: number): Buffer {
    const bytes = Buffer.alloc(4);
    bytes.writeInt32BE(value);
    return bytes;
  },
  uint32(value: number): Buffer {
    const bytes = Buffer.alloc(4);
    bytes.writeUInt32BE(value);
    return bytes;
  },
  cstring(value: string): Buffer {
    return Buffer.concat([Buffer.from(value, 'utf8'), Buffer.of(0)]);
  },
  /** A typed message: the type byte, an Int32 length counting itself, then the body. */
  typed(code: string, ...body: Buffer[]): Buffer {
    const payload = Buffer.concat(body);
    return Buffer.concat([Buffer.from(code, 'latin1'), wire.uint32(payload.length + 4), payload]);
  },
  /** An untyped start-up packet: an Int32 length counting itself, then the body. */
  packet(...body: Buffer[]): Buffer {
    const payload = Buffer.concat(body);
    return Buffer.concat([wire.uint32(payload.length + 4), payload]);
  },
  hex(text: string): Buffer {
    return Buffer.from(text.replace(/\s+/g, ''), 'hex');
  },
};

/** A StartupMessage that moves a parser to typed messages. */
export const startup = wire.packet(wire.int32(196608), wire.cstring('user'), wire.cstring('agent'), wire.byte(0));
export const syncBytes = wire.typed('S');

export interface ParseRun {
  readonly messages: FrontendMessage[];
  readonly violation: ProtocolViolation | undefined;
  /** Violations returned by parse calls after the first one; each must be the first one again. */
  readonly laterViolations: ProtocolViolation[];
}

export interface FeedOptions {
  /** Fed first, each as its own chunk; their messages are not part of the run. */
  readonly prefix?: readonly Buffer[];
  readonly parserOptions?: FrontendParserOptions;
  /** Runs on a fresh parser, after the prefix. */
  readonly prepare?: (parser: FrontendParser) => void;
}

export function feed(chunks: readonly Buffer[], options: FeedOptions = {}): ParseRun {
  const parser = new FrontendParser(options.parserOptions);
  for (const chunk of options.prefix ?? []) {
    const violation = parser.parse(chunk, () => undefined);
    assert.equal(violation, undefined, `prefix chunk refused: ${violation?.message}`);
  }
  options.prepare?.(parser);
  const messages: FrontendMessage[] = [];
  let violation: ProtocolViolation | undefined;
  const laterViolations: ProtocolViolation[] = [];
  for (const chunk of chunks) {
    const result = parser.parse(chunk, (message) => {
      assert.equal(violation, undefined, 'a message was delivered after a violation');
      messages.push(message);
    });
    if (violation === undefined) {
      violation = result;
    } else if (result !== undefined) {
      laterViolations.push(result);
    }
  }
  return { messages, violation, laterViolations };
}

/** The whole buffer; every cut into two chunks; one byte per chunk. Each chunk is a fresh copy. */
export function framings(bytes: Buffer): Buffer[][] {
  const result: Buffer[][] = [[Buffer.from(bytes)]];
  for (let cut = 1; cut < bytes.length; cut++) {
    result.push([Buffer.from(bytes.subarray(0, cut)), Buffer.from(bytes.subarray(cut))]);
  }
  if (bytes.length > 2) {
    result.push([...bytes].map((byte) => Buffer.of(byte)));
  }
  return result;
}

function describeFraming(chunks: readonly Buffer[]): string {
  return `chunks of ${chunks.map((chunk) => chunk.length).join('+')} bytes`;
}

export interface Followed {
  readonly bytes: Buffer;
  readonly messages: readonly FrontendMessage[];
}

/**
 * `bytes` parse to `expected` however they are cut into chunks, and still do when merged with the message that
 * follows them (a Sync unless `next` says otherwise, or nothing when `next` is null).
 */
export function assertParsesInEveryFraming(
  bytes: Buffer,
  expected: readonly FrontendMessage[],
  options: FeedOptions & { readonly next?: Followed | null } = {},
): void {
  const next = options.next === undefined ? { bytes: syncBytes, messages: [{ type: 'sync' } as const] } : options.next;
  const cases: [Buffer, readonly FrontendMessage[]][] = [[bytes, expected]];
  if (next !== null) {
    cases.push([Buffer.concat([bytes, next.bytes]), [...expected, ...next.messages]]);
  }
  for (const [input, messages] of cases) {
    for (const chunks of framings(input)) {
      const run = feed(chunks, options);
      assert.equal(run.violation, undefined, `${describeFraming(chunks)}: ${run.violation?.message}`);
      assert.deepStrictEqual(run.messages, messages, describeFraming(chunks));
    }
  }
}

export interface ExpectedViolation {
  readonly code: ProtocolViolationCode;
  readonly sqlstate?: string;
  /** The whole message, or a pattern it must match. */
  readonly message: string | RegExp;
}

/**
 * `bytes` end in the violation described however they are cut into chunks, after delivering exactly `before`;
 * nothing more comes out, and a later chunk gets the same violation back.
 */
export function assertViolationInEveryFraming(
  bytes: Buffer,
  expected: ExpectedViolation,
  before: readonly FrontendMessage[] = [],
  options: FeedOptions = {},
): void {
  for (const chunks of framings(bytes)) {
    const run = feed([...chunks, syncBytes, startup], options);
    const framing = describeFraming(chunks);
    assert.ok(run.violation !== undefined, `${framing}: no violation reported`);
    assert.equal(run.violation.name, 'ProtocolViolation', framing);
    assert.equal(run.violation.code, expected.code, `${framing}: ${run.violation.message}`);
    assert.equal(run.violation.sqlstate, expected.sqlstate ?? '08P01', framing);
    if (typeof expected.message === 'string') {
      assert.equal(run.violation.message, expected.message, framing);
    } else {
      assert.match(run.violation.message, expected.message, framing);
    }
    assert.deepStrictEqual(run.messages, before, framing);
    assert.ok(run.laterViolations.length > 0, `${framing}: later input was not refused`);
    for (const later of run.laterViolations) {
      assert.equal(later, run.violation, `${framing}: a later chunk got a different answer`);
    }
  }
}

/**
 * Bytes real clients sent, recorded by a loopback listener that answered SSLRequest with 'N', asked for a cleartext
 * password and then replied like a server: psql 15.20 (libpq 15) running
 * `psql "host=127.0.0.1 user=agent dbname=billing application_name=psql" -c 'select 1'`, and node-postgres 8.23.1
 * running `client.query({ text: 'SELECT $1::int AS n, $2::text AS t', values: [42, null] })` then
 * `client.query({ name: 'by-id', text: 'SELECT * FROM invoices WHERE id = $1', values: [Buffer.from([0, 0, 0, 7])] })`.
 * One entry per chunk read from the socket.
 */
export const captures = {
  psql: {
    sslRequest: wire.hex('00000008 04d2162f'),
    startupMessage: wire.hex(`
      0000003b 00030000
      7573657200 6167656e7400
      646174616261736500 62696c6c696e6700
      6170706c69636174696f6e5f6e616d6500 7073716c00
      00`),
    passwordMessage: wire.hex('70 0000000b 73656372657400'),
    query: wire.hex('51 0000000d 73656c656374203100'),
  },
  nodePostgres: {
    startupMessage: wire.hex(`
      0000003a 00030000
      7573657200 6167656e7400
      646174616261736500 62696c6c696e6700
      636c69656e745f656e636f64696e6700 5554463800
      00`),
    passwordMessage: wire.hex('70 0000000b 73656372657400'),
    unnamedPipeline: wire.hex(`
      50 0000002a 00 53454c4543542024313a3a696e74204153206e2c2024323a3a74657874204153207400 0000
      42 0000001c 00 00 0002 0000 0000 0002 00000002 3432 ffffffff 0001 0000
      44 00000006 50 00
      45 00000009 00 00000000
      53 00000004`),
    namedBinaryPipeline: wire.hex(`
      50 00000031 62792d696400 53454c454354202a2046524f4d20696e766f69636573205748455245206964203d20243100 0000
      42 0000001d 00 62792d696400 0001 0001 0001 00000004 00000007 0001 0000
      44 00000006 50 00
      45 00000009 00 00000000
      53 00000004`),
  },
};
