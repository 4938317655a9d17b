/**
 * Frames what a target sends: type byte + Int32 length + body ("Message Formats"). The gateway
 * relays the target's bytes to the client untouched, so this only finds the boundaries and lets
 * the session look at the few messages it acts on (ReadyForQuery, CommandComplete, ErrorResponse,
 * DataRow counts, authentication during login).
 *
 * A target is not trusted either: a length below 4 or above the limit is refused before anything
 * is buffered, so a hostile or broken server cannot make the gateway allocate gigabytes.
 */
export interface BackendFrame {
  readonly type: number;
  /** The message body, without type and length. A view: copy it to keep it. */
  readonly body: Buffer;
}

export const DEFAULT_MAX_BACKEND_MESSAGE_LENGTH = 1024 * 1024 * 1024;

export class BackendFramingError extends Error {
  override readonly name = 'BackendFramingError';
}

export class BackendFramer {
  private pending: Buffer | undefined;

  constructor(private readonly maxMessageLength = DEFAULT_MAX_BACKEND_MESSAGE_LENGTH) {}

  /** Calls `onFrame` for every complete message in `chunk`, keeping a partial one for the next call. */
  push(chunk: Buffer, onFrame: (frame: BackendFrame) => void): void {
    let data = this.pending ? Buffer.concat([this.pending, chunk]) : chunk;
    this.pending = undefined;
    let offset = 0;
    while (data.length - offset >= 5) {
      const type = data[offset]!;
      const length = data.readInt32BE(offset + 1);
      if (length < 4 || length > this.maxMessageLength) {
        throw new BackendFramingError(
          `the target sent a message '${String.fromCharCode(type)}' claiming ${length} bytes (the limit is ${this.maxMessageLength}); the connection to it was closed`,
        );
      }
      const end = offset + 1 + length;
      if (end > data.length) break;
      onFrame({ type, body: data.subarray(offset + 5, end) });
      offset = end;
    }
    if (offset < data.length) {
      // Copy: the chunk's memory may be reused by the socket after this returns.
      this.pending = Buffer.from(data.subarray(offset));
    }
    data = Buffer.alloc(0);
  }

  /** The bytes of an incomplete message kept for the next chunk, handed over (the framer keeps none). */
  takeRemainder(): Buffer {
    const rest = this.pending ?? Buffer.alloc(0);
    this.pending = undefined;
    return rest;
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
