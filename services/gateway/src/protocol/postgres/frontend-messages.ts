// Messages a PostgreSQL client (psql, libpq, node-postgres, JDBC, pgbench) sends to a server, as
// described in "Frontend/Backend Protocol — Message Formats" (protocol 3.0, and 3.2 from PostgreSQL 18).
// pg-protocol parses the backend side; this is the frontend side in the same shape.

/** First byte of every frontend message after the start-up phase. */
export const enum FrontendMessageCode {
  Bind = 0x42, // B — bind parameters to a prepared statement, creating a portal
  Close = 0x43, // C — close a prepared statement or portal
  Describe = 0x44, // D — describe a prepared statement or portal
  Execute = 0x45, // E — run a portal
  FunctionCall = 0x46, // F — call a function by OID (fast-path interface)
  Flush = 0x48, // H — ask the server to send what it has buffered
  Parse = 0x50, // P — create a prepared statement
  Query = 0x51, // Q — simple query: one string, possibly several statements
  Sync = 0x53, // S — end of an extended-query batch: commit or roll back, then ReadyForQuery
  Terminate = 0x58, // X — the client is closing the connection
  CopyDone = 0x63, // c — end of COPY FROM STDIN data
  CopyData = 0x64, // d — a chunk of COPY FROM STDIN data
  CopyFail = 0x66, // f — abort COPY FROM STDIN with a message
  AuthenticationResponse = 0x70, // p — PasswordMessage, SASLInitialResponse, SASLResponse or GSSResponse
}

/** Request codes in the version field of the untyped start-up packets. */
export const enum StartupRequestCode {
  CancelRequest = 80877102, // 1234.5678 — cancel the query running on another connection
  SSLRequest = 80877103, // 1234.5679 — ask to switch this connection to TLS
  GSSENCRequest = 80877104, // 1234.5680 — ask to switch this connection to GSSAPI encryption
}

export interface ProtocolVersion {
  readonly major: number;
  readonly minor: number;
}

/** Protocol 3.0: every PostgreSQL since 7.4; BackendKeyData carries a 4-byte secret key. */
export const PROTOCOL_3_0: ProtocolVersion = Object.freeze({ major: 3, minor: 0 });
/** Protocol 3.2: PostgreSQL 18; the secret key of BackendKeyData and CancelRequest is 4 to 256 bytes. */
export const PROTOCOL_3_2: ProtocolVersion = Object.freeze({ major: 3, minor: 2 });

/** Bounds of a cancel secret key (protocol 3.2); protocol 3.0 keys are always 4 bytes. */
export const MIN_SECRET_KEY_LENGTH = 4;
export const MAX_SECRET_KEY_LENGTH = 256;

// ---- start-up phase: length-prefixed packets without a type byte ----

export interface StartupMessage {
  readonly type: 'startupMessage';
  readonly protocolVersion: ProtocolVersion;
  /** In the order the client sent them: user, database, options, replication, application_name, `_pq_.` options… */
  readonly parameters: ReadonlyMap<string, string>;
}

export interface SSLRequest {
  readonly type: 'sslRequest';
}

export interface GSSENCRequest {
  readonly type: 'gssEncRequest';
}

export interface CancelRequest {
  readonly type: 'cancelRequest';
  readonly processId: number;
  /** 4 bytes in protocol 3.0; 4 to 256 bytes in 3.2. */
  readonly secretKey: Buffer;
}

// ---- typed messages ----

export interface QueryMessage {
  readonly type: 'query';
  readonly text: string;
}

export interface ParseMessage {
  readonly type: 'parse';
  /** Empty for the unnamed statement. */
  readonly statement: string;
  readonly text: string;
  /** Type OIDs the client fixes for $1, $2…; 0 leaves one to the server. May be shorter than the parameter list. */
  readonly parameterTypes: readonly number[];
}

/** Format code of a parameter or result column: 0 is text, 1 is binary. Others are left for the server to refuse. */
export type FormatCode = number;

export interface BindMessage {
  readonly type: 'bind';
  /** Empty for the unnamed portal. */
  readonly portal: string;
  /** Empty for the unnamed statement. */
  readonly statement: string;
  /** None (all text), one (applies to all) or one per parameter. */
  readonly parameterFormats: readonly FormatCode[];
  /** null is SQL NULL. Values are views into the received bytes: copy one to keep it beyond the connection. */
  readonly parameters: readonly (Buffer | null)[];
  /** None (all text), one (applies to all) or one per result column. */
  readonly resultFormats: readonly FormatCode[];
}

/** 'S' a prepared statement, 'P' a portal. */
export type DescribeTarget = 'S' | 'P';

export interface DescribeMessage {
  readonly type: 'describe';
  readonly target: DescribeTarget;
  readonly name: string;
}

export interface ExecuteMessage {
  readonly type: 'execute';
  readonly portal: string;
  /** 0 means no limit; otherwise the server stops with PortalSuspended after this many rows. */
  readonly maxRows: number;
}

export interface CloseMessage {
  readonly type: 'close';
  readonly target: DescribeTarget;
  readonly name: string;
}

export interface SyncMessage {
  readonly type: 'sync';
}

export interface FlushMessage {
  readonly type: 'flush';
}

export interface TerminateMessage {
  readonly type: 'terminate';
}

export interface CopyDataMessage {
  readonly type: 'copyData';
  /** A view into the received bytes. */
  readonly data: Buffer;
}

export interface CopyDoneMessage {
  readonly type: 'copyDone';
}

export interface CopyFailMessage {
  readonly type: 'copyFail';
  readonly message: string;
}

export interface FunctionCallMessage {
  readonly type: 'functionCall';
  readonly functionOid: number;
  /** None (all text), one (applies to all) or one per argument. */
  readonly argumentFormats: readonly FormatCode[];
  /** null is SQL NULL. */
  readonly arguments: readonly (Buffer | null)[];
  readonly resultFormat: FormatCode;
}

// ---- authentication responses: all typed 'p'; which one depends on the server's last request ----

/** Answers AuthenticationCleartextPassword (the password) and AuthenticationMD5Password ("md5" + hex digest). */
export interface PasswordMessage {
  readonly type: 'passwordMessage';
  readonly password: string;
}

/** Answers AuthenticationSASL: the chosen mechanism and, for SCRAM, the client-first-message. */
export interface SASLInitialResponse {
  readonly type: 'saslInitialResponse';
  readonly mechanism: string;
  /** null when the client sent no initial response (length -1). */
  readonly data: Buffer | null;
}

/** Answers AuthenticationSASLContinue: for SCRAM, the client-final-message. */
export interface SASLResponse {
  readonly type: 'saslResponse';
  readonly data: Buffer;
}

/** Answers AuthenticationGSS / AuthenticationGSSContinue / AuthenticationSSPI. */
export interface GSSResponse {
  readonly type: 'gssResponse';
  readonly data: Buffer;
}

export type AuthenticationResponse = PasswordMessage | SASLInitialResponse | SASLResponse | GSSResponse;

/** Which authentication response a 'p' message is; the wire does not say, the server's last request does. */
export type AuthenticationResponseType = AuthenticationResponse['type'];

export type StartupPacket = StartupMessage | SSLRequest | GSSENCRequest | CancelRequest;

export type FrontendMessage =
  | StartupPacket
  | QueryMessage
  | ParseMessage
  | BindMessage
  | DescribeMessage
  | ExecuteMessage
  | CloseMessage
  | SyncMessage
  | FlushMessage
  | TerminateMessage
  | CopyDataMessage
  | CopyDoneMessage
  | CopyFailMessage
  | FunctionCallMessage
  | AuthenticationResponse;

export type FrontendMessageType = FrontendMessage['type'];

// Messages without fields are shared, frozen instances.
export const sslRequest: SSLRequest = Object.freeze({ type: 'sslRequest' });
export const gssEncRequest: GSSENCRequest = Object.freeze({ type: 'gssEncRequest' });
export const sync: SyncMessage = Object.freeze({ type: 'sync' });
export const flush: FlushMessage = Object.freeze({ type: 'flush' });
export const terminate: TerminateMessage = Object.freeze({ type: 'terminate' });
export const copyDone: CopyDoneMessage = Object.freeze({ type: 'copyDone' });
