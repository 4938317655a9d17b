import { BufferReader } from './buffer-reader.js';
import {
  type AuthenticationResponseType,
  type BindMessage,
  type CancelRequest,
  type DescribeTarget,
  type FrontendMessage,
  type FunctionCallMessage,
  type ParseMessage,
  type StartupMessage,
  FrontendMessageCode,
  MAX_SECRET_KEY_LENGTH,
  MIN_SECRET_KEY_LENGTH,
  StartupRequestCode,
  copyDone,
  flush,
  gssEncRequest,
  sslRequest,
  sync,
  terminate,
} from './frontend-messages.js';
import { ProtocolViolation, ProtocolViolationCode } from './protocol-violation.js';

// Frame headers: a start-up packet is Int32 length + body; every later message is Byte1 type + Int32 length + body.
// Both lengths count themselves but not the type byte.
const LENGTH_SIZE = 4;
const TYPED_HEADER_SIZE = 1 + LENGTH_SIZE;
/** A start-up packet holds at least its length and a protocol version or request code. */
const MIN_STARTUP_LENGTH = 8;
/** Length of SSLRequest and GSSENCRequest. */
const ENCRYPTION_REQUEST_LENGTH = 8;
/** The pending buffer for a message split across chunks starts this big and doubles up to the message's size. */
const MIN_PENDING_CAPACITY = 8 * 1024;

export interface FrontendParserOptions {
  /**
   * Largest Query, Parse, Bind, FunctionCall and CopyData message accepted, in bytes, counting the length field.
   * Default 1 GiB (PostgreSQL's PQ_LARGE_MESSAGE_LIMIT is 2 bytes less).
   */
  readonly maxMessageLength?: number;
  /** Largest Describe, Close, Execute, Sync, Flush, Terminate, CopyDone, CopyFail. Default 10 000 (PQ_SMALL_MESSAGE_LIMIT). */
  readonly maxControlMessageLength?: number;
  /** Largest authentication response ('p'). Default 65 535 (PG_MAX_AUTH_TOKEN_LENGTH). */
  readonly maxAuthenticationMessageLength?: number;
  /** Largest start-up packet. Default 10 000 (MAX_STARTUP_PACKET_LENGTH). */
  readonly maxStartupMessageLength?: number;
}

export const DEFAULT_MAX_MESSAGE_LENGTH = 1024 * 1024 * 1024;
export const DEFAULT_MAX_CONTROL_MESSAGE_LENGTH = 10_000;
export const DEFAULT_MAX_AUTHENTICATION_MESSAGE_LENGTH = 65_535;
export const DEFAULT_MAX_STARTUP_MESSAGE_LENGTH = 10_000;

export type FrontendMessageCallback = (message: FrontendMessage) => void;

type Phase = 'startup' | 'typed';

/**
 * Incremental parser for what a client sends. It begins in the start-up phase (untyped, length-prefixed packets)
 * and moves to typed messages once a StartupMessage is parsed. Feed it every chunk read from the client socket.
 *
 * Messages are delivered in order through the callback. Buffers inside them (Bind parameters, CopyData, SASL data)
 * are views into the chunks given to `parse` or into a buffer the parser allocated for a message split across
 * chunks; the parser never writes to either afterwards, so the views stay valid.
 *
 * Hostile input is reported, never thrown: `parse` returns a ProtocolViolation, delivers no message after it, and
 * returns the same violation for any later chunk. Lengths are checked against the limits as soon as a header is
 * complete, so a claimed length is never buffered before it is known to be acceptable.
 */
export class FrontendParser {
  private phase: Phase = 'startup';
  private violation: ProtocolViolation | undefined;
  private expectedAuthentication: AuthenticationResponseType = 'passwordMessage';
  private sslRequested = false;
  private gssEncRequested = false;

  /** Bytes of one message that began in an earlier chunk. */
  private pending: Buffer | undefined;
  private pendingLength = 0;
  /** Full size of the pending message, type byte included; 0 while its header is incomplete. */
  private pendingFrameLength = 0;
  /** Unparsed rest of chunks whose callback threw; parsed before the next chunk. */
  private readonly deferred: Buffer[] = [];

  private readonly reader = new BufferReader();
  private readonly limits: Readonly<Required<FrontendParserOptions>>;

  constructor(options: FrontendParserOptions = {}) {
    this.limits = {
      maxMessageLength: limit(options, 'maxMessageLength', DEFAULT_MAX_MESSAGE_LENGTH),
      maxControlMessageLength: limit(options, 'maxControlMessageLength', DEFAULT_MAX_CONTROL_MESSAGE_LENGTH),
      maxAuthenticationMessageLength: limit(
        options,
        'maxAuthenticationMessageLength',
        DEFAULT_MAX_AUTHENTICATION_MESSAGE_LENGTH,
      ),
      maxStartupMessageLength: limit(options, 'maxStartupMessageLength', DEFAULT_MAX_STARTUP_MESSAGE_LENGTH),
    };
  }

  /** The violation that stopped this parser, if any. */
  get failure(): ProtocolViolation | undefined {
    return this.violation;
  }

  /**
   * Says how to read the next 'p' messages: the type is decided by the authentication request the server sent
   * last (AuthenticationCleartextPassword/MD5Password → passwordMessage, SASL → saslInitialResponse,
   * SASLContinue → saslResponse, GSS/GSSContinue/SSPI → gssResponse). Until called, 'p' is a PasswordMessage.
   */
  expectAuthentication(type: AuthenticationResponseType): void {
    this.expectedAuthentication = type;
  }

  /**
   * Parses `chunk`, delivering each complete message to `callback`; keeps an incomplete one for the next chunk.
   * Returns the ProtocolViolation that stops the connection, if the client broke the protocol.
   *
   * An exception thrown by `callback` propagates; the parser keeps the rest of the chunk and parses it first
   * on the next call.
   */
  parse(chunk: Buffer, callback: FrontendMessageCallback): ProtocolViolation | undefined {
    if (this.violation !== undefined) {
      return this.violation;
    }
    if (this.deferred.length === 0) {
      return this.consume(chunk, callback);
    }
    this.deferred.push(chunk);
    while (this.deferred.length > 0) {
      const next = this.deferred.shift() as Buffer;
      const violation = this.consume(next, callback);
      if (violation !== undefined) {
        return violation;
      }
    }
    return undefined;
  }

  private consume(chunk: Buffer, callback: FrontendMessageCallback): ProtocolViolation | undefined {
    let offset = 0;
    let settled = false;
    try {
      if (this.pending !== undefined) {
        const taken = this.fillPending(chunk);
        if (typeof taken !== 'number') {
          return this.fail(taken);
        }
        offset = taken;
        if (this.pendingFrameLength === 0 || this.pendingLength < this.pendingFrameLength) {
          settled = true; // the whole chunk went into the pending message
          return undefined;
        }
        const frame = this.pending.subarray(0, this.pendingFrameLength);
        // Dropped, never reused: the message about to be delivered may hold views into it.
        this.pending = undefined;
        this.pendingLength = 0;
        this.pendingFrameLength = 0;
        const violation = this.deliver(frame, 0, frame.length, offset < chunk.length, callback);
        if (violation !== undefined) {
          return violation;
        }
      }
      while (offset < chunk.length) {
        const frameLength = this.frameLength(chunk, offset, chunk.length);
        if (typeof frameLength !== 'number') {
          return this.fail(frameLength);
        }
        if (frameLength === 0 || offset + frameLength > chunk.length) {
          this.startPending(chunk, offset, frameLength);
          offset = chunk.length;
          break;
        }
        const start = offset;
        offset += frameLength;
        const violation = this.deliver(chunk, start, offset, offset < chunk.length, callback);
        if (violation !== undefined) {
          return violation;
        }
      }
      settled = true;
      return undefined;
    } finally {
      // Only when the callback threw: keep what was not parsed yet.
      if (!settled && this.violation === undefined && offset < chunk.length) {
        this.deferred.unshift(chunk.subarray(offset));
      }
    }
  }

  private fail(violation: ProtocolViolation): ProtocolViolation {
    this.violation = violation;
    this.pending = undefined;
    this.pendingLength = 0;
    this.pendingFrameLength = 0;
    this.deferred.length = 0;
    this.reader.release();
    return violation;
  }

  /** Decodes the frame `buffer[start, end)` and hands it to the callback. */
  private deliver(
    buffer: Buffer,
    start: number,
    end: number,
    moreInput: boolean,
    callback: FrontendMessageCallback,
  ): ProtocolViolation | undefined {
    let message: FrontendMessage;
    try {
      message =
        this.phase === 'startup' ? this.decodeStartupPacket(buffer, start, end) : this.decodeTyped(buffer, start, end);
    } catch (error) {
      if (error instanceof ProtocolViolation) {
        return this.fail(error);
      }
      throw error;
    } finally {
      this.reader.release();
    }
    const encryptionRequest = message.type === 'sslRequest' || message.type === 'gssEncRequest';
    if (encryptionRequest && (moreInput || this.deferred.length > 0)) {
      // The client must wait for 'S' or 'N' before sending more; bytes already here were not encrypted and may
      // have been injected by a man in the middle (CVE-2021-23214). PostgreSQL refuses them the same way.
      const request = message.type === 'sslRequest' ? 'SSLRequest' : 'GSSENCRequest';
      return this.fail(
        new ProtocolViolation(
          ProtocolViolationCode.UnencryptedDataAfterEncryptionRequest,
          `received unencrypted data after ${request}: the client must wait for the server's answer before sending more; this is either a client bug or an attempted man-in-the-middle attack`,
        ),
      );
    }
    callback(message);
    return undefined;
  }

  /**
   * Size of the frame at `offset`, type byte included; 0 if its header is not complete in `buffer[offset, end)`.
   * Refuses unknown types and unacceptable lengths before any body is buffered.
   */
  private frameLength(buffer: Buffer, offset: number, end: number): number | ProtocolViolation {
    const available = end - offset;
    if (this.phase === 'startup') {
      if (available < LENGTH_SIZE) {
        return 0;
      }
      const length = buffer.readUInt32BE(offset);
      if (length < MIN_STARTUP_LENGTH) {
        return new ProtocolViolation(
          ProtocolViolationCode.LengthTooShort,
          `start-up packet declares a length of ${length} bytes, less than the ${MIN_STARTUP_LENGTH} its length and protocol version take; the client is not speaking the PostgreSQL protocol`,
        );
      }
      const maxLength = this.limits.maxStartupMessageLength;
      if (length > maxLength) {
        return new ProtocolViolation(
          ProtocolViolationCode.MessageTooLong,
          oversizeStartupPacket(buffer, offset, end, length, maxLength),
        );
      }
      return length;
    }
    if (available < 1) {
      return 0;
    }
    const code = buffer[offset] as number;
    const option = limitOptionOf(code);
    if (option === undefined) {
      return new ProtocolViolation(ProtocolViolationCode.UnknownMessageType, unknownType(code));
    }
    if (available < TYPED_HEADER_SIZE) {
      return 0;
    }
    const length = buffer.readUInt32BE(offset + 1);
    if (length < LENGTH_SIZE) {
      return new ProtocolViolation(
        ProtocolViolationCode.LengthTooShort,
        `message ${quoteCode(code)} declares a length of ${length} bytes, less than the ${LENGTH_SIZE} bytes of the length field itself; the client is out of step with the protocol`,
      );
    }
    const maxLength = this.limits[option];
    if (length > maxLength) {
      return new ProtocolViolation(
        ProtocolViolationCode.MessageTooLong,
        `message ${quoteCode(code)} of ${length} bytes exceeds the ${maxLength}-byte limit; if such messages are legitimate, raise the gateway's ${option}`,
      );
    }
    return length + 1;
  }

  /** Keeps `chunk[offset, …)`, the start of a message, in a buffer of the parser's own. */
  private startPending(chunk: Buffer, offset: number, frameLength: number): void {
    const available = chunk.length - offset;
    const capacity =
      frameLength === 0 ? TYPED_HEADER_SIZE : Math.min(frameLength, Math.max(MIN_PENDING_CAPACITY, 2 * available));
    const pending = Buffer.allocUnsafe(capacity);
    chunk.copy(pending, 0, offset);
    this.pending = pending;
    this.pendingLength = available;
    this.pendingFrameLength = frameLength;
  }

  /** Copies the next bytes of the pending message from `chunk`; returns how many were taken. */
  private fillPending(chunk: Buffer): number | ProtocolViolation {
    let taken = 0;
    if (this.pendingFrameLength === 0) {
      const headerSize = this.phase === 'startup' ? LENGTH_SIZE : TYPED_HEADER_SIZE;
      taken = Math.min(headerSize - this.pendingLength, chunk.length);
      this.append(chunk, 0, taken);
      const frameLength = this.frameLength(this.pending as Buffer, 0, this.pendingLength);
      if (typeof frameLength !== 'number' || frameLength === 0) {
        return frameLength === 0 ? taken : frameLength;
      }
      this.pendingFrameLength = frameLength;
    }
    const wanted = Math.min(this.pendingFrameLength - this.pendingLength, chunk.length - taken);
    this.append(chunk, taken, taken + wanted);
    return taken + wanted;
  }

  private append(chunk: Buffer, start: number, end: number): void {
    let pending = this.pending as Buffer;
    const needed = this.pendingLength + (end - start);
    if (needed > pending.length) {
      const ceiling = this.pendingFrameLength === 0 ? needed : this.pendingFrameLength;
      const grown = Buffer.allocUnsafe(Math.min(ceiling, Math.max(needed, 2 * pending.length, MIN_PENDING_CAPACITY)));
      pending.copy(grown, 0, 0, this.pendingLength);
      pending = grown;
      this.pending = grown;
    }
    chunk.copy(pending, this.pendingLength, start, end);
    this.pendingLength = needed;
  }

  // ---- start-up packets ----

  private decodeStartupPacket(buffer: Buffer, start: number, end: number): FrontendMessage {
    const { reader } = this;
    const length = end - start;
    reader.setMessage(buffer, start + LENGTH_SIZE, end, 'start-up packet');
    const code = reader.uint32('protocol version');
    switch (code) {
      case StartupRequestCode.SSLRequest:
        this.checkEncryptionRequest('SSLRequest', this.sslRequested, length);
        this.sslRequested = true;
        return sslRequest;
      case StartupRequestCode.GSSENCRequest:
        this.checkEncryptionRequest('GSSENCRequest', this.gssEncRequested, length);
        this.gssEncRequested = true;
        return gssEncRequest;
      case StartupRequestCode.CancelRequest:
        return this.decodeCancelRequest(buffer, start, end);
      default:
        return this.decodeStartupMessage(buffer, start, end, code);
    }
  }

  private checkEncryptionRequest(request: string, alreadyRequested: boolean, length: number): void {
    if (length !== ENCRYPTION_REQUEST_LENGTH) {
      throw new ProtocolViolation(
        ProtocolViolationCode.MalformedMessage,
        `${request} of ${length} bytes; it is always ${ENCRYPTION_REQUEST_LENGTH} bytes long`,
      );
    }
    if (alreadyRequested) {
      throw new ProtocolViolation(
        ProtocolViolationCode.RepeatedEncryptionRequest,
        `the client sent a second ${request} on one connection; a client asks for encryption at most once`,
      );
    }
  }

  private decodeCancelRequest(buffer: Buffer, start: number, end: number): CancelRequest {
    const { reader } = this;
    reader.setMessage(buffer, start + LENGTH_SIZE + 4, end, 'CancelRequest');
    const processId = reader.int32('process ID');
    const secretKey = reader.rest();
    if (secretKey.length < MIN_SECRET_KEY_LENGTH || secretKey.length > MAX_SECRET_KEY_LENGTH) {
      throw new ProtocolViolation(
        ProtocolViolationCode.MalformedMessage,
        `CancelRequest carries a secret key of ${secretKey.length} bytes; keys are ${MIN_SECRET_KEY_LENGTH} bytes (protocol 3.0) or ${MIN_SECRET_KEY_LENGTH} to ${MAX_SECRET_KEY_LENGTH} bytes (3.2)`,
      );
    }
    return { type: 'cancelRequest', processId, secretKey };
  }

  private decodeStartupMessage(buffer: Buffer, start: number, end: number, version: number): StartupMessage {
    const major = version >>> 16;
    const minor = version & 0xffff;
    if (major !== 3) {
      throw new ProtocolViolation(
        ProtocolViolationCode.UnsupportedProtocolVersion,
        `unsupported frontend protocol ${major}.${minor}: the gateway supports 3.0 to 3.2, as PostgreSQL 18 does; upgrade the client library`,
      );
    }
    const { reader } = this;
    reader.setMessage(buffer, start + LENGTH_SIZE + 4, end, 'StartupMessage');
    const parameters = new Map<string, string>();
    for (;;) {
      const name = reader.cstring('parameter list (a name, or the empty name that ends the list)');
      if (name === '') {
        break;
      }
      const value = reader.cstring(`value of parameter "${name}"`);
      if (parameters.has(name)) {
        // PostgreSQL takes the last; a gateway that checked the first would be fooled.
        throw new ProtocolViolation(
          ProtocolViolationCode.MalformedMessage,
          `StartupMessage sets parameter "${name}" twice; send each start-up parameter once`,
        );
      }
      parameters.set(name, value);
    }
    reader.expectEnd();
    this.phase = 'typed';
    return { type: 'startupMessage', protocolVersion: { major, minor }, parameters };
  }

  // ---- typed messages ----

  private decodeTyped(buffer: Buffer, start: number, end: number): FrontendMessage {
    const { reader } = this;
    const code = buffer[start] as number;
    reader.setMessage(buffer, start + TYPED_HEADER_SIZE, end, labelOf(code));
    let message: FrontendMessage;
    switch (code) {
      case FrontendMessageCode.Query:
        message = { type: 'query', text: reader.cstring('query string') };
        break;
      case FrontendMessageCode.Parse:
        message = this.decodeParse();
        break;
      case FrontendMessageCode.Bind:
        message = this.decodeBind();
        break;
      case FrontendMessageCode.Describe:
        message = { type: 'describe', target: this.target(), name: reader.cstring('statement or portal name') };
        break;
      case FrontendMessageCode.Execute:
        message = {
          type: 'execute',
          portal: reader.cstring('portal name'),
          maxRows: reader.int32('maximum row count'),
        };
        break;
      case FrontendMessageCode.Close:
        message = { type: 'close', target: this.target(), name: reader.cstring('statement or portal name') };
        break;
      case FrontendMessageCode.Sync:
        message = sync;
        break;
      case FrontendMessageCode.Flush:
        message = flush;
        break;
      case FrontendMessageCode.Terminate:
        message = terminate;
        break;
      case FrontendMessageCode.CopyData:
        message = { type: 'copyData', data: reader.rest() };
        break;
      case FrontendMessageCode.CopyDone:
        message = copyDone;
        break;
      case FrontendMessageCode.CopyFail:
        message = { type: 'copyFail', message: reader.cstring('error message') };
        break;
      case FrontendMessageCode.FunctionCall:
        message = this.decodeFunctionCall();
        break;
      case FrontendMessageCode.AuthenticationResponse:
        message = this.decodeAuthenticationResponse();
        break;
      default:
        // frameLength() refused every other code before its body was read.
        throw new ProtocolViolation(ProtocolViolationCode.UnknownMessageType, unknownType(code));
    }
    reader.expectEnd();
    return message;
  }

  private decodeParse(): ParseMessage {
    const { reader } = this;
    const statement = reader.cstring('statement name');
    const text = reader.cstring('query string');
    const count = reader.uint16('parameter type count');
    reader.needElements(count, 4, 'parameter types');
    const parameterTypes = new Array<number>(count);
    for (let i = 0; i < count; i++) {
      parameterTypes[i] = reader.uint32('type OID of parameter $', i);
    }
    return { type: 'parse', statement, text, parameterTypes };
  }

  private decodeBind(): BindMessage {
    const { reader } = this;
    const portal = reader.cstring('portal name');
    const statement = reader.cstring('statement name');
    const parameterFormats = this.formatCodes('parameter format codes', 'parameter format code #');
    const parameters = this.values('parameter values', 'value of parameter $');
    const resultFormats = this.formatCodes('result format codes', 'result format code #');
    this.checkFormatCount(parameterFormats.length, parameters.length, 'parameter');
    return { type: 'bind', portal, statement, parameterFormats, parameters, resultFormats };
  }

  private decodeFunctionCall(): FunctionCallMessage {
    const { reader } = this;
    const functionOid = reader.uint32('function OID');
    const argumentFormats = this.formatCodes('argument format codes', 'argument format code #');
    const args = this.values('arguments', 'value of argument #');
    const resultFormat = reader.int16('result format code');
    this.checkFormatCount(argumentFormats.length, args.length, 'argument');
    return { type: 'functionCall', functionOid, argumentFormats, arguments: args, resultFormat };
  }

  private decodeAuthenticationResponse(): FrontendMessage {
    const { reader } = this;
    switch (this.expectedAuthentication) {
      case 'passwordMessage':
        return { type: 'passwordMessage', password: reader.cstring('password') };
      case 'saslInitialResponse': {
        const mechanism = reader.cstring('SASL mechanism name');
        const length = reader.int32('initial response length');
        if (length < -1) {
          reader.malformed(
            `declares a SASL initial response of ${length} bytes; only -1 (none) or a byte count is allowed`,
          );
        }
        const data = length === -1 ? null : reader.bytes(length, 'initial response');
        return { type: 'saslInitialResponse', mechanism, data };
      }
      case 'saslResponse':
        return { type: 'saslResponse', data: reader.rest() };
      case 'gssResponse':
        return { type: 'gssResponse', data: reader.rest() };
    }
  }

  private target(): DescribeTarget {
    const target = this.reader.byte('target');
    if (target === 0x53 || target === 0x50) {
      return target === 0x53 ? 'S' : 'P';
    }
    return this.reader.malformed(
      `names target ${describeByte(target)}; expected 'S' (prepared statement) or 'P' (portal)`,
    );
  }

  private checkFormatCount(formats: number, values: number, element: string): void {
    if (formats > 1 && formats !== values) {
      this.reader.malformed(
        `has ${formats} ${element} format codes for ${values} ${element}s; send none, one for all, or one per ${element}`,
      );
    }
  }

  private formatCodes(elements: string, field: string): number[] {
    const { reader } = this;
    const count = reader.uint16(`count of ${elements}`);
    reader.needElements(count, 2, elements);
    const codes = new Array<number>(count);
    for (let i = 0; i < count; i++) {
      codes[i] = reader.int16(field, i);
    }
    return codes;
  }

  private values(elements: string, field: string): (Buffer | null)[] {
    const { reader } = this;
    const count = reader.uint16(`count of ${elements}`);
    reader.needElements(count, 4, elements);
    const values = new Array<Buffer | null>(count);
    for (let i = 0; i < count; i++) {
      const length = reader.int32(`length of ${field}`, i);
      if (length === -1) {
        values[i] = null;
      } else if (length < 0) {
        reader.malformed(
          `gives the ${field}${i + 1} a length of ${length} bytes; only -1 (NULL) or a byte count is allowed`,
        );
      } else {
        values[i] = reader.bytes(length, field, i);
      }
    }
    return values;
  }
}

/** Which limit applies to a message type; undefined for a type no frontend message has. */
function limitOptionOf(code: number): keyof FrontendParserOptions | undefined {
  switch (code) {
    case FrontendMessageCode.Query:
    case FrontendMessageCode.Parse:
    case FrontendMessageCode.Bind:
    case FrontendMessageCode.FunctionCall:
    case FrontendMessageCode.CopyData:
      return 'maxMessageLength';
    case FrontendMessageCode.Describe:
    case FrontendMessageCode.Close:
    case FrontendMessageCode.Execute:
    case FrontendMessageCode.Sync:
    case FrontendMessageCode.Flush:
    case FrontendMessageCode.Terminate:
    case FrontendMessageCode.CopyDone:
    case FrontendMessageCode.CopyFail:
      return 'maxControlMessageLength';
    case FrontendMessageCode.AuthenticationResponse:
      return 'maxAuthenticationMessageLength';
    default:
      return undefined;
  }
}

function limit(options: FrontendParserOptions, option: keyof FrontendParserOptions, fallback: number): number {
  const value = options[option];
  if (value === undefined) {
    return fallback;
  }
  // Below 8 bytes not even a start-up packet fits; lengths are read as UInt32.
  if (!Number.isSafeInteger(value) || value < MIN_STARTUP_LENGTH || value > 0xffffffff) {
    throw new RangeError(
      `FrontendParser option ${option} must be a whole number of bytes from ${MIN_STARTUP_LENGTH} to 4294967295, not ${value}`,
    );
  }
  return value;
}

const LABELS: Readonly<Record<number, string>> = {
  [FrontendMessageCode.Bind]: "Bind message ('B')",
  [FrontendMessageCode.Close]: "Close message ('C')",
  [FrontendMessageCode.Describe]: "Describe message ('D')",
  [FrontendMessageCode.Execute]: "Execute message ('E')",
  [FrontendMessageCode.FunctionCall]: "FunctionCall message ('F')",
  [FrontendMessageCode.Flush]: "Flush message ('H')",
  [FrontendMessageCode.Parse]: "Parse message ('P')",
  [FrontendMessageCode.Query]: "Query message ('Q')",
  [FrontendMessageCode.Sync]: "Sync message ('S')",
  [FrontendMessageCode.Terminate]: "Terminate message ('X')",
  [FrontendMessageCode.CopyDone]: "CopyDone message ('c')",
  [FrontendMessageCode.CopyData]: "CopyData message ('d')",
  [FrontendMessageCode.CopyFail]: "CopyFail message ('f')",
  [FrontendMessageCode.AuthenticationResponse]: "authentication response ('p')",
};

function labelOf(code: number): string {
  return LABELS[code] ?? `message ${quoteCode(code)}`;
}

function quoteCode(code: number): string {
  return code >= 0x21 && code <= 0x7e ? `'${String.fromCharCode(code)}'` : `0x${code.toString(16).padStart(2, '0')}`;
}

function describeByte(byte: number): string {
  return byte >= 0x21 && byte <= 0x7e ? quoteCode(byte) : `byte ${quoteCode(byte)}`;
}

function unknownType(code: number): string {
  const hint =
    code === 0x16
      ? '; it looks like a TLS handshake: a client must send SSLRequest before starting TLS'
      : code === 0x00
        ? '; it looks like a start-up packet, which a client sends only once, at the beginning'
        : '';
  return `unknown frontend message type ${quoteCode(code)}${hint}`;
}

function oversizeStartupPacket(buffer: Buffer, offset: number, end: number, length: number, maxLength: number): string {
  // A TLS record starts 0x16 0x03: a client using sslnegotiation=direct, which skips SSLRequest.
  const tls = end - offset >= 2 && buffer[offset] === 0x16 && buffer[offset + 1] === 0x03;
  const hint = tls
    ? 'it looks like a TLS handshake sent without SSLRequest (libpq sslnegotiation=direct); connect with sslnegotiation=postgres'
    : 'the client is probably not speaking the PostgreSQL protocol';
  return `start-up packet of ${length} bytes exceeds the ${maxLength}-byte limit; ${hint}`;
}
