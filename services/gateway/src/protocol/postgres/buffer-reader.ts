import { isUtf8 } from 'node:buffer';
import { ProtocolViolation, ProtocolViolationCode } from './protocol-violation.js';

// pg-protocol's BufferReader trusts the server: it reads past the end of a message into the next one, a string
// without its NUL runs to the end of the buffer, and a short buffer throws RangeError. Client input is hostile,
// so this reader is bounded by the end of one message and reports every overrun as a ProtocolViolation.

const EMPTY = Buffer.alloc(0);
const NUL = 0;

/** Reads the fields of one message; throws ProtocolViolation when the message does not hold them. */
export class BufferReader {
  private buffer: Buffer = EMPTY;
  private offset = 0;
  private end = 0;
  /** Names the message in violation texts, e.g. "Bind message ('B')". */
  private label = '';

  /** Reads `buffer[offset, end)`: the body of one message, after its header. */
  setMessage(buffer: Buffer, offset: number, end: number, label: string): void {
    this.buffer = buffer;
    this.offset = offset;
    this.end = end;
    this.label = label;
  }

  /** Lets go of the last message's bytes. */
  release(): void {
    this.buffer = EMPTY;
    this.offset = 0;
    this.end = 0;
  }

  remaining(): number {
    return this.end - this.offset;
  }

  byte(field: string): number {
    this.need(1, field);
    return this.buffer[this.offset++] as number;
  }

  int16(field: string, index?: number): number {
    this.need(2, field, index);
    const value = this.buffer.readInt16BE(this.offset);
    this.offset += 2;
    return value;
  }

  /** Counts are Int16 in the documentation, but PostgreSQL reads them unsigned (pq_getmsgint): 0 to 65535. */
  uint16(field: string): number {
    this.need(2, field);
    const value = this.buffer.readUInt16BE(this.offset);
    this.offset += 2;
    return value;
  }

  int32(field: string, index?: number): number {
    this.need(4, field, index);
    const value = this.buffer.readInt32BE(this.offset);
    this.offset += 4;
    return value;
  }

  /** OIDs are unsigned 32-bit. */
  uint32(field: string, index?: number): number {
    this.need(4, field, index);
    const value = this.buffer.readUInt32BE(this.offset);
    this.offset += 4;
    return value;
  }

  /** A NUL-terminated UTF-8 string. */
  cstring(field: string): string {
    const start = this.offset;
    const terminator = this.buffer.subarray(start, this.end).indexOf(NUL);
    if (terminator === -1) {
      throw new ProtocolViolation(
        ProtocolViolationCode.UnterminatedString,
        `${this.label} ends inside its ${field}: the string has no NUL terminator`,
      );
    }
    const stop = start + terminator;
    this.offset = stop + 1;
    return this.decode(start, stop, field);
  }

  /** `length` bytes, as a view (no copy). */
  bytes(length: number, field: string, index?: number): Buffer {
    this.need(length, field, index);
    const start = this.offset;
    this.offset += length;
    return this.buffer.subarray(start, this.offset);
  }

  /** The rest of the message, as a view (no copy). */
  rest(): Buffer {
    const start = this.offset;
    this.offset = this.end;
    return this.buffer.subarray(start, this.end);
  }

  /** Checks that `count` elements of at least `size` bytes each fit before reading them one by one. */
  needElements(count: number, size: number, elements: string): void {
    const needed = count * size;
    if (needed > this.remaining()) {
      throw new ProtocolViolation(
        ProtocolViolationCode.MessageTruncated,
        `${this.label} announces ${count} ${elements}, which need at least ${needed} bytes, but only ${this.remaining()} remain in the message`,
      );
    }
  }

  /** Reports a field whose value the protocol does not allow. */
  malformed(problem: string): never {
    throw new ProtocolViolation(ProtocolViolationCode.MalformedMessage, `${this.label} ${problem}`);
  }

  /** Every field is read: anything left over means client and gateway disagree on the format. */
  expectEnd(): void {
    if (this.offset !== this.end) {
      throw new ProtocolViolation(
        ProtocolViolationCode.TrailingBytes,
        `${this.label} has ${this.end - this.offset} unexpected bytes after its last field`,
      );
    }
  }

  private need(count: number, field: string, index?: number): void {
    if (count > this.end - this.offset) {
      const name = index === undefined ? field : `${field}${index + 1}`;
      throw new ProtocolViolation(
        ProtocolViolationCode.MessageTruncated,
        `${this.label} ends before its ${name}: ${count} bytes needed, ${this.end - this.offset} left`,
      );
    }
  }

  private decode(start: number, stop: number, field: string): string {
    const bytes = this.buffer.subarray(start, stop);
    // A lossy decode would let the gateway decide on a text that differs from the bytes the server runs.
    if (!isUtf8(bytes)) {
      throw new ProtocolViolation(
        ProtocolViolationCode.InvalidUtf8,
        `${this.label} carries a ${field} that is not valid UTF-8; connect with client_encoding=UTF8`,
      );
    }
    return bytes.toString('utf8');
  }
}
