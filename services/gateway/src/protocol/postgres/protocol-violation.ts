/** What was wrong with the bytes a client sent. */
export enum ProtocolViolationCode {
  /** A length field smaller than the fields it must cover. */
  LengthTooShort = 'length-too-short',
  /** A length field above the configured limit for that kind of message. */
  MessageTooLong = 'message-too-long',
  /** A type byte that no frontend message has. */
  UnknownMessageType = 'unknown-message-type',
  /** A string field without its NUL terminator before the message ends. */
  UnterminatedString = 'unterminated-string',
  /** A field, or the elements a count announces, runs past the end of the message. */
  MessageTruncated = 'message-truncated',
  /** Bytes left over after the last field of a message. */
  TrailingBytes = 'trailing-bytes',
  /** A field whose value the protocol does not allow (a Describe target, a negative length, mismatched counts…). */
  MalformedMessage = 'malformed-message',
  /** A string that is not valid UTF-8: the gateway decides on text, so it must read it as the server will. */
  InvalidUtf8 = 'invalid-utf8',
  /** A start-up packet asking for a protocol other than 3.x. */
  UnsupportedProtocolVersion = 'unsupported-protocol-version',
  /** Bytes that came with an SSLRequest or GSSENCRequest, before the answer: never to be trusted (CVE-2021-23214). */
  UnencryptedDataAfterEncryptionRequest = 'unencrypted-data-after-encryption-request',
  /** A second SSLRequest or GSSENCRequest on one connection. */
  RepeatedEncryptionRequest = 'repeated-encryption-request',
}

/** SQLSTATEs a violation is reported with, as PostgreSQL reports the same fault. */
export type ProtocolViolationSqlstate =
  | '08P01' // protocol_violation
  | '0A000' // feature_not_supported
  | '22021'; // character_not_in_repertoire

export function sqlstateOf(code: ProtocolViolationCode): ProtocolViolationSqlstate {
  switch (code) {
    case ProtocolViolationCode.LengthTooShort:
    case ProtocolViolationCode.MessageTooLong:
    case ProtocolViolationCode.UnknownMessageType:
    case ProtocolViolationCode.UnterminatedString:
    case ProtocolViolationCode.MessageTruncated:
    case ProtocolViolationCode.TrailingBytes:
    case ProtocolViolationCode.MalformedMessage:
    case ProtocolViolationCode.UnencryptedDataAfterEncryptionRequest:
    case ProtocolViolationCode.RepeatedEncryptionRequest:
      return '08P01';
    case ProtocolViolationCode.UnsupportedProtocolVersion:
      return '0A000';
    case ProtocolViolationCode.InvalidUtf8:
      return '22021';
    default:
      return assertUnreachable(code);
  }
}

/**
 * The client broke the wire protocol. The connection cannot be trusted to be in step any more: answer with a
 * FATAL ErrorResponse carrying `sqlstate` and `message`, then close it.
 */
export class ProtocolViolation extends Error {
  override readonly name = 'ProtocolViolation';
  readonly sqlstate: ProtocolViolationSqlstate;

  constructor(
    readonly code: ProtocolViolationCode,
    message: string,
  ) {
    super(message);
    this.sqlstate = sqlstateOf(code);
  }
}

function assertUnreachable(value: never): never {
  throw new Error(`unhandled protocol violation code ${String(value)}`);
}
