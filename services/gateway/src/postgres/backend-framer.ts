/**
 * Frames what a target sends: type byte + Int32 length + body ("Message Formats"). The gateway
 * relays the target's bytes to the client untouched, so this only finds the boundaries and lets
 * the session look at the few messages it acts on (ReadyForQuery, CommandComplete, ErrorResponse,
 * DataRow counts, authentication during login).
 *
 * Bodies the caller does not read (DataRow, CopyData…) are skipped, never buffered: a 1 GB row
 * costs no memory here, and the bytes of a large message are copied once at most — buffering
 * every chunk again behind the last made a 40 MB row take 25 times as long through the gateway.
 *
 * A target is not trusted either: a length below 4 or above the limit is refused as soon as the
 * header is read, and a body that is kept grows with the bytes that arrive, not with the claim.
 */
export interface BackendFrame {
  readonly type: number;
  /** The message body, without type and length; empty when its type's body is skipped. A view: copy it to keep it. */
  readonly body: Buffer;
  /**
   * Where the message began in the chunk just pushed, or -1 when it began in an earlier chunk;
   * and where it ended in this chunk. A relay that rewrites messages splices at these offsets.
   */
  readonly start: number;
  readonly end: number;
  /** The caller withheld its first bytes (see `withholdPending`): they were not relayed, so the whole message must be. */
  readonly withheld: boolean;
}

/** The message still incomplete after a push. */
export interface PendingMessage {
  readonly type: number;
  /** Where it began in the chunk just pushed, or -1 when in an earlier one. */
  readonly start: number;
  readonly withheld: boolean;
}

export const DEFAULT_MAX_BACKEND_MESSAGE_LENGTH = 1024 * 1024 * 1024;

export class BackendFramingError extends Error {
  override readonly name = 'BackendFramingError';
}

const HEADER_SIZE = 5;
const INITIAL_BODY_CAPACITY = 64 * 1024;
const EMPTY = Buffer.alloc(0);

/** A message whose body spans chunks. */
interface PartialMessage {
  readonly type: number;
  readonly bodyLength: number;
  /** The bytes so far, for a kept body; undefined while skipping one. */
  body: Buffer | undefined;
  received: number;
  start: number;
  withheld: boolean;
}

export class BackendFramer {
  private readonly header = Buffer.alloc(HEADER_SIZE);
  private headerLength = 0;
  private partial: PartialMessage | undefined;
  /** Where the header being read began in the last chunk (-1: an earlier chunk), and whether it is withheld. */
  private headerStart = -1;
  private headerWithheld = false;

  /**
   * @param keepsBody which message types the caller reads the body of; the others are delivered
   *   with an empty body once their last byte has passed.
   */
  constructor(
    private readonly maxMessageLength = DEFAULT_MAX_BACKEND_MESSAGE_LENGTH,
    private readonly keepsBody: (type: number) => boolean = () => true,
  ) {}

  /** Body bytes held for a message not yet complete (a kept body only). */
  get bufferedBytes(): number {
    return this.partial?.body ? this.partial.received : 0;
  }

  /** True between messages: bytes of the gateway's own (a NoticeResponse) may be sent to the client now. */
  get atMessageBoundary(): boolean {
    return this.partial === undefined && this.headerLength === 0;
  }

  /** Calls `onFrame` for every message completed by `chunk`, in order, keeping the state of an incomplete one. */
  push(chunk: Buffer, onFrame: (frame: BackendFrame) => void): void {
    let offset = 0;
    // Whatever is carried over began before this chunk.
    if (this.partial) this.partial.start = -1;
    this.headerStart = -1;
    while (offset < chunk.length) {
      const partial = this.partial;
      if (partial) {
        const n = Math.min(partial.bodyLength - partial.received, chunk.length - offset);
        if (partial.body) partial.body = this.append(partial, chunk, offset, n);
        partial.received += n;
        offset += n;
        if (partial.received < partial.bodyLength) return;
        this.partial = undefined;
        onFrame({ type: partial.type, body: partial.body ? partial.body.subarray(0, partial.bodyLength) : EMPTY, start: partial.start, end: offset, withheld: partial.withheld });
        continue;
      }
      if (this.headerLength > 0 || chunk.length - offset < HEADER_SIZE) {
        if (this.headerLength === 0) this.headerStart = offset;
        const n = Math.min(HEADER_SIZE - this.headerLength, chunk.length - offset);
        chunk.copy(this.header, this.headerLength, offset, offset + n);
        this.headerLength += n;
        offset += n;
        if (this.headerLength < HEADER_SIZE) return;
        this.headerLength = 0;
        const withheld = this.headerWithheld;
        this.headerWithheld = false;
        this.begin(this.header[0]!, this.header.readInt32BE(1), onFrame, this.headerStart, offset, withheld);
        continue;
      }
      const type = chunk[offset]!;
      const bodyLength = this.checkedBodyLength(type, chunk.readInt32BE(offset + 1));
      const bodyStart = offset + HEADER_SIZE;
      if (chunk.length - bodyStart >= bodyLength) {
        onFrame({ type, body: chunk.subarray(bodyStart, bodyStart + bodyLength), start: offset, end: bodyStart + bodyLength, withheld: false });
        offset = bodyStart + bodyLength;
        continue;
      }
      const start = offset;
      offset = bodyStart;
      this.begin(type, bodyLength + 4, onFrame, start, offset, false);
    }
  }

  /** The message a push left incomplete, if any (a header of at least its type byte counts). */
  get pending(): PendingMessage | undefined {
    if (this.partial) return { type: this.partial.type, start: this.partial.start, withheld: this.partial.withheld };
    if (this.headerLength > 0) return { type: this.header[0]!, start: this.headerStart, withheld: this.headerWithheld };
    return undefined;
  }

  /**
   * The caller has not relayed the pending message's first bytes (it may rewrite the message):
   * its body is kept from now on, and its frame comes with `withheld`, so it can be relayed whole.
   * Only for a message that began in the chunk just pushed, or one already withheld.
   */
  withholdPending(): void {
    const pending = this.pending;
    if (!pending) return;
    if (pending.start < 0 && !pending.withheld) throw new Error('a message already partly relayed cannot be withheld');
    if (this.partial) {
      if (!this.partial.body && this.partial.received > 0) throw new Error('a message whose body was skipped cannot be withheld');
      this.partial.body ??= Buffer.allocUnsafe(Math.min(this.partial.bodyLength, INITIAL_BODY_CAPACITY));
      this.partial.withheld = true;
    } else {
      this.headerWithheld = true;
    }
  }

  /**
   * Hands over the bytes of an incomplete message (header and kept body so far), and forgets it.
   * For the login reader, which keeps every body, when the session takes over the socket.
   */
  takeRemainder(): Buffer {
    const partial = this.partial;
    this.partial = undefined;
    const headerLength = this.headerLength;
    this.headerLength = 0;
    this.headerWithheld = false;
    if (!partial) return Buffer.from(this.header.subarray(0, headerLength));
    if (!partial.body && partial.bodyLength > 0) throw new Error('a skipped message body cannot be handed over');
    const header = Buffer.alloc(HEADER_SIZE);
    header[0] = partial.type;
    header.writeInt32BE(partial.bodyLength + 4, 1);
    return Buffer.concat([header, (partial.body ?? EMPTY).subarray(0, partial.received)]);
  }

  private begin(type: number, length: number, onFrame: (frame: BackendFrame) => void, start: number, at: number, withheld: boolean): void {
    const bodyLength = this.checkedBodyLength(type, length);
    if (bodyLength === 0) {
      onFrame({ type, body: EMPTY, start, end: at, withheld });
      return;
    }
    const body = withheld || this.keepsBody(type) ? Buffer.allocUnsafe(Math.min(bodyLength, INITIAL_BODY_CAPACITY)) : undefined;
    this.partial = { type, bodyLength, body, received: 0, start, withheld };
  }

  private checkedBodyLength(type: number, length: number): number {
    if (length < 4 || length > this.maxMessageLength) {
      throw new BackendFramingError(
        `the target sent a message '${String.fromCharCode(type)}' claiming ${length} bytes (the limit is ${this.maxMessageLength}); the connection to it was closed`,
      );
    }
    return length - 4;
  }

  /** Copies `n` bytes of `chunk` into the kept body, growing it by doubling up to the message's size. */
  private append(partial: PartialMessage, chunk: Buffer, offset: number, n: number): Buffer {
    let body = partial.body!;
    const needed = partial.received + n;
    if (needed > body.length) {
      const grown = Buffer.allocUnsafe(Math.min(partial.bodyLength, Math.max(needed, 2 * body.length)));
      body.copy(grown, 0, 0, partial.received);
      body = grown;
    }
    chunk.copy(body, partial.received, offset, offset + n);
    return body;
  }
}

/** Backend message type bytes the gateway acts on ("Message Formats"). */
export const enum BackendType {
  Authentication = 0x52, // R
  BackendKeyData = 0x4b, // K
  ParameterStatus = 0x53, // S
  ReadyForQuery = 0x5a, // Z
  CommandComplete = 0x43, // C
  ErrorResponse = 0x45, // E
  NoticeResponse = 0x4e, // N
  DataRow = 0x44, // D
  EmptyQueryResponse = 0x49, // I
  PortalSuspended = 0x73, // s
  ParseComplete = 0x31, // 1
  BindComplete = 0x32, // 2
  RowDescription = 0x54, // T
  NoData = 0x6e, // n
  ParameterDescription = 0x74, // t
  CopyData = 0x64, // d
  CopyDone = 0x63, // c
  FunctionCallResponse = 0x56, // V
  CloseComplete = 0x33, // 3
  CopyInResponse = 0x47, // G
  CopyOutResponse = 0x48, // H
  CopyBothResponse = 0x57, // W
  NegotiateProtocolVersion = 0x76, // v
}

/** Reads the fields of an ErrorResponse or NoticeResponse body. */
export function readReportFields(body: Buffer): Map<string, string> {
  const fields = new Map<string, string>();
  let offset = 0;
  while (offset < body.length && body[offset] !== 0) {
    const code = String.fromCharCode(body[offset]!);
    const end = body.indexOf(0, offset + 1);
    if (end < 0) break;
    fields.set(code, body.toString('utf8', offset + 1, end));
    offset = end + 1;
  }
  return fields;
}

/** CommandComplete's tag, e.g. "SELECT 3". */
export function readCString(body: Buffer, offset = 0): string {
  const end = body.indexOf(0, offset);
  return body.toString('utf8', offset, end < 0 ? body.length : end);
}
