import { isUtf8 } from 'node:buffer';

/**
 * Where a buffer's trailing, incomplete UTF-8 sequence starts (its length when it ends on a
 * character boundary). A stream's chunks may split a character; only the complete part of each
 * chunk is checked, and the tail is checked with the next chunk.
 */
export function completeUtf8Length(bytes: Buffer): number {
  const n = bytes.length;
  for (let back = 1; back <= Math.min(3, n); back++) {
    const b = bytes[n - back]!;
    if ((b & 0xc0) === 0x80) continue; // a continuation byte: look further back for its lead
    const need = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 1;
    return need > back ? n - back : n;
  }
  return n;
}

/**
 * Tells text output from binary. Masking reads output as UTF-8 text: bytes that are not UTF-8
 * (a tarball, an image, scp's own protocol) would be altered by it, and a secret inside them
 * could not be found, so such output is not relayed under masking at all.
 */
export class Utf8Guard {
  private carry: Buffer = Buffer.alloc(0);

  /** false once the stream has shown bytes that are not UTF-8. */
  accept(chunk: Buffer): boolean {
    const bytes = this.carry.length > 0 ? Buffer.concat([this.carry, chunk]) : chunk;
    const complete = completeUtf8Length(bytes);
    this.carry = Buffer.from(bytes.subarray(complete));
    return isUtf8(bytes.subarray(0, complete));
  }

  /** At the end of the stream a character left incomplete is not text. */
  end(): boolean {
    return this.carry.length === 0;
  }
}

export type OutputStream = 'stdout' | 'stderr';

/** One recorded output line, as the audit trail keeps it: [stream, text]. */
export type OutputRow = readonly [OutputStream, string];

const MAX_RECORDED_LINE = 4096;

/**
 * Splits a command's masked output into the lines the audit trail records ("rows" of a command),
 * keeping at most `limit` of them while counting all. A line longer than 4 KiB is cut, with a
 * note of its full length, so one huge line cannot swell an event.
 */
export class OutputLines {
  private readonly partial: Record<OutputStream, string> = { stdout: '', stderr: '' };
  private rows: OutputRow[] = [];
  /** Every line seen, kept or not (a last line without a newline counts). */
  total = 0;

  constructor(private readonly limit: number) {}

  push(stream: OutputStream, text: string): void {
    if (text.length === 0) return;
    const parts = (this.partial[stream] + text).split('\n');
    this.partial[stream] = parts.pop()!;
    for (const line of parts) this.line(stream, line);
  }

  /** Ends both streams: what is left without a newline is a line too. */
  end(): void {
    for (const stream of ['stdout', 'stderr'] as const) {
      if (this.partial[stream] !== '') this.line(stream, this.partial[stream]);
      this.partial[stream] = '';
    }
  }

  /** How many rows wait to be taken. */
  get kept(): number {
    return this.rows.length;
  }

  /** The rows kept since the last take. */
  take(): OutputRow[] {
    const rows = this.rows;
    this.rows = [];
    return rows;
  }

  private line(stream: OutputStream, raw: string): void {
    this.total += 1;
    if (this.total > this.limit) return;
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    this.rows.push([stream, line.length > MAX_RECORDED_LINE ? `${line.slice(0, MAX_RECORDED_LINE)}… (${line.length} characters)` : line]);
  }
}

/** The completion tag of a command, as recorded: how it ended. */
export function exitTag(exit: { readonly code?: number | null; readonly signal?: string | undefined } | undefined): string {
  if (!exit) return 'closed';
  if (exit.signal) return `signal ${exit.signal.replace(/^SIG/, '')}`;
  return `exit ${exit.code ?? 0}`;
}
