import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Parser } from 'pg-protocol/dist/parser.js';
import { serializeBackend } from './backend-serializer.js';
import { ProtocolViolation, ProtocolViolationCode } from './protocol-violation.js';
import { wire } from './wire-bytes.spec.js';

/** What node-postgres makes of the bytes: an independent reading of every message pg-protocol knows. */
function readAsNodePostgres(bytes: Buffer): Record<string, unknown>[] {
  const messages: Record<string, unknown>[] = [];
  new Parser().parse(bytes, (message) => {
    // An ErrorResponse arrives as a DatabaseError, whose message is not enumerable.
    messages.push(message instanceof Error ? { ...message, message: message.message } : { ...message });
  });
  return messages;
}

function readOne(bytes: Buffer): Record<string, unknown> {
  const messages = readAsNodePostgres(bytes);
  assert.equal(messages.length, 1);
  return messages[0]!;
}

describe('serializeBackend', () => {
  it('answers SSLRequest and GSSENCRequest with a single byte', () => {
    assert.deepStrictEqual(serializeBackend.encryptionAnswer('S'), Buffer.from('S'));
    assert.deepStrictEqual(serializeBackend.encryptionAnswer('N'), Buffer.from('N'));
  });

  it('writes AuthenticationOk and AuthenticationCleartextPassword', () => {
    assert.deepStrictEqual(serializeBackend.authenticationOk(), wire.typed('R', wire.int32(0)));
    assert.deepStrictEqual(readOne(serializeBackend.authenticationOk()), { name: 'authenticationOk', length: 8 });
    assert.deepStrictEqual(serializeBackend.authenticationCleartextPassword(), wire.typed('R', wire.int32(3)));
    assert.deepStrictEqual(readOne(serializeBackend.authenticationCleartextPassword()), {
      name: 'authenticationCleartextPassword',
      length: 8,
    });
  });

  it('writes AuthenticationMD5Password with its salt', () => {
    const salt = wire.hex('9a3c01ff');
    assert.deepStrictEqual(serializeBackend.authenticationMD5Password(salt), wire.typed('R', wire.int32(5), salt));
    assert.deepStrictEqual(readOne(serializeBackend.authenticationMD5Password(salt)), {
      name: 'authenticationMD5Password',
      length: 12,
      salt,
    });
  });

  it('writes the SASL exchange: mechanisms, challenge, outcome', () => {
    const sasl = serializeBackend.authenticationSASL(['SCRAM-SHA-256-PLUS', 'SCRAM-SHA-256']);
    assert.deepStrictEqual(
      sasl,
      wire.typed('R', wire.int32(10), wire.cstring('SCRAM-SHA-256-PLUS'), wire.cstring('SCRAM-SHA-256'), wire.byte(0)),
    );
    assert.deepStrictEqual(readOne(sasl).mechanisms, ['SCRAM-SHA-256-PLUS', 'SCRAM-SHA-256']);

    const serverFirst = 'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096';
    const challenge = serializeBackend.authenticationSASLContinue(Buffer.from(serverFirst));
    assert.deepStrictEqual(challenge, wire.typed('R', wire.int32(11), Buffer.from(serverFirst)));
    assert.deepStrictEqual(readOne(challenge), { name: 'authenticationSASLContinue', length: 8 + serverFirst.length, data: serverFirst });

    const serverFinal = 'v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=';
    const outcome = serializeBackend.authenticationSASLFinal(Buffer.from(serverFinal));
    assert.deepStrictEqual(readOne(outcome), { name: 'authenticationSASLFinal', length: 8 + serverFinal.length, data: serverFinal });
  });

  it('writes ParameterStatus', () => {
    const bytes = serializeBackend.parameterStatus('server_version', '18.1');
    assert.deepStrictEqual(bytes, wire.typed('S', wire.cstring('server_version'), wire.cstring('18.1')));
    assert.deepStrictEqual(readOne(bytes), {
      name: 'parameterStatus',
      length: bytes.length - 1,
      parameterName: 'server_version',
      parameterValue: '18.1',
    });
  });

  it('writes BackendKeyData with a 4-byte key (protocol 3.0) and a 32-byte key (3.2)', () => {
    const short = serializeBackend.backendKeyData(4242, wire.int32(-559038737));
    assert.deepStrictEqual(readOne(short), { name: 'backendKeyData', length: 12, processID: 4242, secretKey: -559038737 });
    const key = Buffer.alloc(32, 0x7e);
    assert.deepStrictEqual(serializeBackend.backendKeyData(4242, key), wire.typed('K', wire.int32(4242), key));
  });

  it('writes ReadyForQuery for each transaction status', () => {
    for (const status of ['I', 'T', 'E'] as const) {
      const bytes = serializeBackend.readyForQuery(status);
      assert.deepStrictEqual(bytes, wire.typed('Z', Buffer.from(status)));
      assert.deepStrictEqual(readOne(bytes), { name: 'readyForQuery', length: 5, status });
    }
  });

  it('writes an ErrorResponse with fields in the order PostgreSQL sends them', () => {
    const bytes = serializeBackend.errorResponse({
      severity: 'ERROR',
      sqlstate: '42501',
      message: 'statement denied by policy "no-ddl"',
      hint: 'ask for approval with `tracegate approvals request`',
      position: 8,
    });
    assert.deepStrictEqual(
      bytes,
      wire.typed(
        'E',
        Buffer.from('S'),
        wire.cstring('ERROR'),
        Buffer.from('V'),
        wire.cstring('ERROR'),
        Buffer.from('C'),
        wire.cstring('42501'),
        Buffer.from('M'),
        wire.cstring('statement denied by policy "no-ddl"'),
        Buffer.from('H'),
        wire.cstring('ask for approval with `tracegate approvals request`'),
        Buffer.from('P'),
        wire.cstring('8'),
        wire.byte(0),
      ),
    );
  });

  it('writes every error field so that node-postgres reads each back', () => {
    const bytes = serializeBackend.errorResponse({
      severity: 'FATAL',
      sqlstate: '23505',
      message: 'duplicate key value violates unique constraint "invoices_pkey"',
      detail: 'Key (id)=(7) already exists.',
      hint: 'use ON CONFLICT',
      where: 'SQL function "f" statement 1',
      schema: 'public',
      table: 'invoices',
      column: 'id',
      dataType: 'int4',
      constraint: 'invoices_pkey',
      position: 15,
      internalPosition: 3,
      internalQuery: 'SELECT 1',
      file: 'nbtinsert.c',
      line: 664,
      routine: '_bt_check_unique',
    });
    const error = readOne(bytes);
    assert.equal(error.name, 'error');
    assert.deepStrictEqual(
      {
        severity: error.severity,
        code: error.code,
        detail: error.detail,
        hint: error.hint,
        where: error.where,
        schema: error.schema,
        table: error.table,
        column: error.column,
        dataType: error.dataType,
        constraint: error.constraint,
        position: error.position,
        internalPosition: error.internalPosition,
        internalQuery: error.internalQuery,
        file: error.file,
        line: error.line,
        routine: error.routine,
      },
      {
        severity: 'FATAL',
        code: '23505',
        detail: 'Key (id)=(7) already exists.',
        hint: 'use ON CONFLICT',
        where: 'SQL function "f" statement 1',
        schema: 'public',
        table: 'invoices',
        column: 'id',
        dataType: 'int4',
        constraint: 'invoices_pkey',
        position: '15',
        internalPosition: '3',
        internalQuery: 'SELECT 1',
        file: 'nbtinsert.c',
        line: '664',
        routine: '_bt_check_unique',
      },
    );
  });

  it('writes a NoticeResponse', () => {
    const notice = readOne(serializeBackend.noticeResponse({ severity: 'WARNING', sqlstate: '01000', message: 'statement recorded' }));
    assert.equal(notice.name, 'notice');
    assert.equal(notice.message, 'statement recorded');
    assert.equal(notice.severity, 'WARNING');
    assert.equal(notice.code, '01000');
  });

  it('turns a ProtocolViolation into the FATAL ErrorResponse that ends the connection', () => {
    const violation = new ProtocolViolation(ProtocolViolationCode.UnknownMessageType, "unknown frontend message type 'z'");
    const error = readOne(serializeBackend.errorResponse({ severity: 'FATAL', sqlstate: violation.sqlstate, message: violation.message }));
    assert.equal(error.code, '08P01');
    assert.equal(error.message, "unknown frontend message type 'z'");
  });

  it('writes NegotiateProtocolVersion with the options it did not recognise', () => {
    assert.deepStrictEqual(
      serializeBackend.negotiateProtocolVersion(2, ['_pq_.example', '_pq_.other']),
      wire.typed('v', wire.int32(2), wire.int32(2), wire.cstring('_pq_.example'), wire.cstring('_pq_.other')),
    );
    assert.deepStrictEqual(serializeBackend.negotiateProtocolVersion(0, []), wire.typed('v', wire.int32(0), wire.int32(0)));
  });

  it('writes several messages that node-postgres reads as one start-up answer', () => {
    const bytes = Buffer.concat([
      serializeBackend.authenticationOk(),
      serializeBackend.parameterStatus('client_encoding', 'UTF8'),
      serializeBackend.backendKeyData(1, wire.int32(2)),
      serializeBackend.readyForQuery('I'),
    ]);
    assert.deepStrictEqual(
      readAsNodePostgres(bytes).map((message) => message.name),
      ['authenticationOk', 'parameterStatus', 'backendKeyData', 'readyForQuery'],
    );
  });

  it('refuses values the wire cannot carry, and stays usable after refusing', () => {
    const refusals: [() => Buffer, RegExp][] = [
      [() => serializeBackend.errorResponse({ severity: 'ERROR', sqlstate: '4250', message: 'x' }), /a SQLSTATE is five digits or capital letters, not "4250"/],
      [() => serializeBackend.errorResponse({ severity: 'ERROR', sqlstate: '42501', message: 'a\0b' }), /the error field M contains a NUL/],
      [() => serializeBackend.errorResponse({ severity: 'ERROR', sqlstate: '42501', message: 'x', position: 0 }), /error field position must be an integer from 1/],
      [() => serializeBackend.backendKeyData(1, Buffer.alloc(3)), /a cancel secret key is 4 to 256 bytes, not 3/],
      [() => serializeBackend.backendKeyData(2 ** 31, Buffer.alloc(4)), /the process ID must be an integer/],
      [() => serializeBackend.authenticationMD5Password(Buffer.alloc(5)), /an MD5 salt is 4 bytes, not 5/],
      [() => serializeBackend.authenticationSASL([]), /at least one mechanism/],
      [() => serializeBackend.authenticationSASL(['SCRAM-SHA-256', '']), /cannot be empty/],
      [() => serializeBackend.parameterStatus('application_name', 'a\0b'), /contains a NUL character/],
      [() => serializeBackend.negotiateProtocolVersion(70_000, []), /newest minor protocol version must be an integer from 0 to 65535/],
    ];
    for (const [write, error] of refusals) {
      assert.throws(write, (thrown: unknown) => thrown instanceof RangeError && error.test(thrown.message));
      assert.deepStrictEqual(serializeBackend.parameterStatus('a', 'b'), wire.typed('S', wire.cstring('a'), wire.cstring('b')));
    }
  });
});
