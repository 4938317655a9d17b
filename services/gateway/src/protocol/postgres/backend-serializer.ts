import { Writer } from 'pg-protocol/dist/buffer-writer.js';
import { MAX_SECRET_KEY_LENGTH, MIN_SECRET_KEY_LENGTH } from './frontend-messages.js';
import { cstring, int32, integer, uint16 } from './serializer-checks.js';

// The backend messages the gateway writes itself: its side of start-up and authentication, and the errors and
// notices it raises. Everything the target sends is relayed as raw bytes and never re-serialised.
// pg-protocol's serializer is frontend-only; its Writer is reused.

/** First byte of the backend messages written here. */
export const enum BackendMessageCode {
  CommandComplete = 0x43, // C — a statement finished; carries its command tag ("SET", "SELECT 3")
  ErrorResponse = 0x45, // E — an error; FATAL closes the connection
  BackendKeyData = 0x4b, // K — process ID and secret key the client quotes in a CancelRequest
  NoticeResponse = 0x4e, // N — a warning or notice; the session goes on
  Authentication = 0x52, // R — an authentication request, or AuthenticationOk
  ParameterStatus = 0x53, // S — a run-time parameter's current value (server_version, client_encoding…)
  ReadyForQuery = 0x5a, // Z — the server waits for the next query; carries the transaction status
  NegotiateProtocolVersion = 0x76, // v — the newest minor version supported, and the protocol options not recognised
}

/** Int32 after 'R', saying which authentication message it is. */
const enum AuthenticationCode {
  Ok = 0, // authentication succeeded
  CleartextPassword = 3, // send the password in a PasswordMessage
  MD5Password = 5, // send "md5" + md5(md5(password + user) + salt) in a PasswordMessage
  SASL = 10, // pick one of the listed SASL mechanisms: SASLInitialResponse
  SASLContinue = 11, // SASL challenge: SASLResponse
  SASLFinal = 12, // SASL outcome data; AuthenticationOk follows
}

/** 'I' idle, 'T' in a transaction block, 'E' in a failed transaction block (queries refused until it ends). */
export type TransactionStatus = 'I' | 'T' | 'E';

/** 'S' accepts an SSLRequest or GSSENCRequest (the handshake starts); 'N' declines (the client goes on in plaintext). */
export type EncryptionAnswer = 'S' | 'N';

export type ErrorSeverity = 'ERROR' | 'FATAL' | 'PANIC';
export type NoticeSeverity = 'WARNING' | 'NOTICE' | 'DEBUG' | 'INFO' | 'LOG';

/** Fields of ErrorResponse and NoticeResponse ("Error and Notice Message Fields"); absent ones are not sent. */
export interface ReportFields<Severity extends string> {
  /** Sent as both S and V: the gateway does not localise severities. */
  readonly severity: Severity;
  /** C: five characters, e.g. 42501 insufficient_privilege. */
  readonly sqlstate: string;
  /** M: one line, what happened. */
  readonly message: string;
  /** D */
  readonly detail?: string;
  /** H: what to do about it. */
  readonly hint?: string;
  /** W: call stack context. */
  readonly where?: string;
  /** s */
  readonly schema?: string;
  /** t */
  readonly table?: string;
  /** c */
  readonly column?: string;
  /** d */
  readonly dataType?: string;
  /** n */
  readonly constraint?: string;
  /** P: 1-based character position in the query string. */
  readonly position?: number;
  /** p: like position, in the internal query. */
  readonly internalPosition?: number;
  /** q */
  readonly internalQuery?: string;
  /** F */
  readonly file?: string;
  /** L */
  readonly line?: number;
  /** R */
  readonly routine?: string;
}

export type ErrorFields = ReportFields<ErrorSeverity>;
export type NoticeFields = ReportFields<NoticeSeverity>;

const SQLSTATE = /^[0-9A-Z]{5}$/;

const writer = new Writer();

// Fixed messages are shared: do not write into them.
const authenticationOkBuffer = authentication(AuthenticationCode.Ok).flush(BackendMessageCode.Authentication);
const cleartextPasswordBuffer = authentication(AuthenticationCode.CleartextPassword).flush(
  BackendMessageCode.Authentication,
);
const readyForQueryBuffers: Readonly<Record<TransactionStatus, Buffer>> = {
  I: writer.addString('I').flush(BackendMessageCode.ReadyForQuery),
  T: writer.addString('T').flush(BackendMessageCode.ReadyForQuery),
  E: writer.addString('E').flush(BackendMessageCode.ReadyForQuery),
};
const encryptionAnswers: Readonly<Record<EncryptionAnswer, Buffer>> = {
  S: Buffer.from('S'),
  N: Buffer.from('N'),
};

function authentication(code: AuthenticationCode): Writer {
  return writer.addInt32(code);
}

function guarded(write: () => Buffer): Buffer {
  try {
    return write();
  } catch (error) {
    writer.clear(); // drop what the refused message had written so far
    throw error;
  }
}

export const serializeBackend = {
  /** The single byte answering SSLRequest or GSSENCRequest; it has no type or length. */
  encryptionAnswer(answer: EncryptionAnswer): Buffer {
    return encryptionAnswers[answer];
  },

  authenticationOk(): Buffer {
    return authenticationOkBuffer;
  },

  authenticationCleartextPassword(): Buffer {
    return cleartextPasswordBuffer;
  },

  authenticationMD5Password(salt: Buffer): Buffer {
    if (salt.length !== 4) {
      throw new RangeError(`an MD5 salt is 4 bytes, not ${salt.length}`);
    }
    return authentication(AuthenticationCode.MD5Password).add(salt).flush(BackendMessageCode.Authentication);
  },

  /** Offers SASL mechanisms, most preferred first, e.g. ['SCRAM-SHA-256-PLUS', 'SCRAM-SHA-256']. */
  authenticationSASL(mechanisms: readonly string[]): Buffer {
    if (mechanisms.length === 0) {
      throw new RangeError('AuthenticationSASL must offer at least one mechanism');
    }
    return guarded(() => {
      authentication(AuthenticationCode.SASL);
      for (const mechanism of mechanisms) {
        if (mechanism === '') {
          throw new RangeError('a SASL mechanism name cannot be empty: the empty name ends the list');
        }
        writer.addCString(cstring(mechanism, 'SASL mechanism name'));
      }
      return writer.addCString('').flush(BackendMessageCode.Authentication);
    });
  },

  /** For SCRAM, the server-first-message. */
  authenticationSASLContinue(data: Buffer): Buffer {
    return authentication(AuthenticationCode.SASLContinue).add(data).flush(BackendMessageCode.Authentication);
  },

  /** For SCRAM, the server-final-message. */
  authenticationSASLFinal(data: Buffer): Buffer {
    return authentication(AuthenticationCode.SASLFinal).add(data).flush(BackendMessageCode.Authentication);
  },

  parameterStatus(name: string, value: string): Buffer {
    return guarded(() =>
      writer
        .addCString(cstring(name, 'parameter name'))
        .addCString(cstring(value, `value of parameter "${name}"`))
        .flush(BackendMessageCode.ParameterStatus),
    );
  },

  /** The secret key is 4 bytes for a protocol 3.0 client; 4 to 256 bytes for 3.2. */
  backendKeyData(processId: number, secretKey: Buffer): Buffer {
    int32(processId, 'process ID');
    if (secretKey.length < MIN_SECRET_KEY_LENGTH || secretKey.length > MAX_SECRET_KEY_LENGTH) {
      throw new RangeError(
        `a cancel secret key is ${MIN_SECRET_KEY_LENGTH} to ${MAX_SECRET_KEY_LENGTH} bytes, not ${secretKey.length}`,
      );
    }
    return writer.addInt32(processId).add(secretKey).flush(BackendMessageCode.BackendKeyData);
  },

  /** For a statement the gateway answers itself (SET tracegate.trace_id). */
  commandComplete(tag: string): Buffer {
    return guarded(() => writer.addCString(cstring(tag, 'command tag')).flush(BackendMessageCode.CommandComplete));
  },

  readyForQuery(status: TransactionStatus): Buffer {
    return readyForQueryBuffers[status];
  },

  errorResponse(fields: ErrorFields): Buffer {
    return guarded(() => report(fields).flush(BackendMessageCode.ErrorResponse));
  },

  noticeResponse(fields: NoticeFields): Buffer {
    return guarded(() => report(fields).flush(BackendMessageCode.NoticeResponse));
  },

  /**
   * Tells a client that asked for a newer minor version (or for `_pq_.` options) what the server speaks:
   * the newest minor version of the client's major version that it supports, and the options it did not recognise.
   */
  negotiateProtocolVersion(newestMinorVersion: number, unrecognizedOptions: readonly string[]): Buffer {
    uint16(newestMinorVersion, 'newest minor protocol version');
    return guarded(() => {
      writer.addInt32(newestMinorVersion).addInt32(unrecognizedOptions.length);
      for (const option of unrecognizedOptions) {
        writer.addCString(cstring(option, 'protocol option name'));
      }
      return writer.flush(BackendMessageCode.NegotiateProtocolVersion);
    });
  },
};

/** Fields in the order PostgreSQL sends them (elog.c, send_message_to_frontend). */
function report(fields: ReportFields<string>): Writer {
  if (!SQLSTATE.test(fields.sqlstate)) {
    throw new RangeError(`a SQLSTATE is five digits or capital letters, not "${fields.sqlstate}"`);
  }
  field('S', fields.severity);
  field('V', fields.severity);
  field('C', fields.sqlstate);
  field('M', fields.message);
  field('D', fields.detail);
  field('H', fields.hint);
  field('W', fields.where);
  field('s', fields.schema);
  field('t', fields.table);
  field('c', fields.column);
  field('d', fields.dataType);
  field('n', fields.constraint);
  field('P', positiveInteger(fields.position, 'position'));
  field('p', positiveInteger(fields.internalPosition, 'internal position'));
  field('q', fields.internalQuery);
  field('F', fields.file);
  field('L', positiveInteger(fields.line, 'line'));
  field('R', fields.routine);
  return writer.addCString('');
}

function field(code: string, value: string | undefined): void {
  if (value !== undefined) {
    writer.addString(code).addCString(cstring(value, `error field ${code}`));
  }
}

function positiveInteger(value: number | undefined, name: string): string | undefined {
  return value === undefined ? undefined : String(integer(value, 1, 0x7fffffff, `error field ${name}`));
}
