import { isUtf8 } from 'node:buffer';
import { asciiTraitsOf, latin1TraitsOf } from './detectors.js';
import type { MaskingHits } from './profile.js';
import { HASH_TOKEN_LENGTH, REDACTED, type MaskingStrategy, type StrategyApplier } from './strategies.js';
import type { HitCounter, TextMasker } from './text-masker.js';

/** A column of a result, as a RowDescription describes it. */
export interface ResultColumn {
  readonly name: string;
  /** The source table's OID and the column's attribute number; 0 when it is an expression. */
  readonly tableOid: number;
  readonly columnId: number;
  readonly typeOid: number;
  /** 0 text, 1 binary. */
  readonly format: 0 | 1;
}

/** Why a result cannot be masked safely: the statement is refused with this sentence. */
export interface MaskingRefusal {
  readonly refused: string;
}

/** How one result is masked: built once per RowDescription, applied to every DataRow. */
export interface ResultMaskPlan {
  /** False when nothing in this result can ever be masked: rows may pass untouched. */
  readonly active: boolean;
  /** Takes and returns a whole DataRow message; the same buffer object when nothing changed. */
  maskDataRow(message: Buffer): Buffer;
  /** How often each column rule, JSON path and detector fired in this result so far. */
  hits(): MaskingHits;
}

/** PostgreSQL type OIDs (pg_type.dat) the plan treats specially. */
export const PgType = {
  bytea: 17,
  char: 18,
  name: 19,
  int8: 20,
  text: 25,
  json: 114,
  xml: 142,
  unknown: 705,
  bpchar: 1042,
  varchar: 1043,
  numeric: 1700,
  jsonb: 3802,
} as const;

/** OIDs below this are built in; above, user types (domains, enums, citext…) whose binary form the plan cannot know. */
const FIRST_NORMAL_OID = 16384;

const TEXTUAL = new Set<number>([PgType.text, PgType.varchar, PgType.bpchar, PgType.name, PgType.unknown, PgType.xml]);
/**
 * Arrays of text and JSON (text[], varchar[], bpchar[], json[], jsonb[]): in text format their
 * literal is scanned like text; every replacement a detector makes (no spaces, commas, braces or
 * quotes) leaves the literal valid.
 */
const TEXT_ARRAYS = new Set<number>([1009, 1015, 1014, 199, 3807]);
/**
 * Arrays whose binary form the plan rebuilds element by element (array_send: Int32 dimensions,
 * Int32 has-nulls, element OID, per dimension Int32 size and lower bound, then per element an
 * Int32 length, -1 for NULL, and its bytes): the element type and how its values are scanned.
 */
const BINARY_ARRAYS = new Map<number, { readonly oid: number; readonly codec: ElementCodec }>([
  [1009, { oid: PgType.text, codec: 'text' }],
  [1015, { oid: PgType.varchar, codec: 'text' }],
  [1014, { oid: PgType.bpchar, codec: 'text' }],
  [1003, { oid: PgType.name, codec: 'text' }],
  [143, { oid: PgType.xml, codec: 'text' }],
  [199, { oid: PgType.json, codec: 'json' }],
  [3807, { oid: PgType.jsonb, codec: 'jsonb-binary' }],
  [1001, { oid: PgType.bytea, codec: 'bytea-raw' }],
]);
const BYTEA_ARRAY = 1001;
/** Element codecs of binary arrays: the binary forms of text-like types. */
type ElementCodec = 'text' | 'json' | 'jsonb-binary' | 'bytea-raw';

/** A whole-column rule, resolved for one column. */
export interface WholeColumnMask {
  readonly rule: string;
  readonly strategy: MaskingStrategy;
  readonly keepLast: number;
}

type Codec =
  /** UTF-8 text: text-format values of any textual type, and binary text/varchar/bpchar/name. */
  | 'text'
  /** A JSON document as text (json either format, jsonb in text format). */
  | 'json'
  /** jsonb binary: a version byte (1) then the JSON text. */
  | 'jsonb-binary'
  /** bytea in text format: \x and hex digits, or the escape format (bytea_output = escape). */
  | 'bytea-hex'
  /** bytea binary: the raw bytes. */
  | 'bytea-raw'
  /** A built-in non-text type: the only safe masked value is NULL. */
  | 'null-only'
  /** int8 binary, scanned as its decimal digits (cards kept as numbers). */
  | 'int8-binary'
  /** numeric binary, scanned as its decimal digits. */
  | 'numeric-binary'
  /** A user type in binary format that is UTF-8 text (citext, enums, domains over text). */
  | 'user-binary'
  /** A binary-format array of a text-like type (BINARY_ARRAYS), scanned element by element. */
  | 'array-binary'
  /** bytea[] in text format: an array literal of bytea text values, each decoded and scanned. */
  | 'bytea-array-text';

/** What happens to one column's values; undefined in the plan = passed through untouched. */
type ColumnAction =
  | { readonly kind: 'whole'; readonly codec: Codec; readonly mask: WholeColumnMask; readonly hitKey: string }
  | { readonly kind: 'scan'; readonly codec: Codec; readonly element?: { readonly oid: number; readonly codec: ElementCodec } };

export interface ColumnTargeting {
  readonly column: ResultColumn;
  /** The column rule it falls under, if any (already downgraded for derived values). */
  readonly whole: WholeColumnMask | undefined;
}

/** Builds the plan for a result, or refuses it when a targeted column cannot be rewritten safely. */
export function buildResultPlan(targets: readonly ColumnTargeting[], text: TextMasker, applier: StrategyApplier, hits: HitCounter): ResultMaskPlan | MaskingRefusal {
  const actions: (ColumnAction | undefined)[] = [];
  const scans = text.hasDetectors || text.hasJsonPaths;
  for (const { column, whole } of targets) {
    if (whole) {
      const codec = wholeCodec(column);
      if (codec === undefined) {
        if (whole.strategy !== 'null') {
          return {
            refused: `column "${column.name}" is masked by rule '${whole.rule}', and values of its type (oid ${column.typeOid}) cannot be masked safely in binary format; request it in text format, or cast it to text in the query`,
          };
        }
        actions.push({ kind: 'whole', codec: 'null-only', mask: whole, hitKey: `column:${column.name}:${whole.rule}` });
        continue;
      }
      actions.push({ kind: 'whole', codec, mask: whole, hitKey: `column:${column.name}:${whole.rule}` });
      continue;
    }
    const codec = scans ? scanCodec(column, text.hasDetectors) : undefined;
    if (codec === 'array-binary') actions.push({ kind: 'scan', codec, element: BINARY_ARRAYS.get(column.typeOid)! });
    else actions.push(codec ? { kind: 'scan', codec } : undefined);
  }
  return new DataRowMasker(actions, text, applier, hits);
}

function wholeCodec(column: ResultColumn): Codec | undefined {
  const { typeOid, format } = column;
  if (typeOid === PgType.json || (typeOid === PgType.jsonb && format === 0)) return 'json';
  if (typeOid === PgType.jsonb) return 'jsonb-binary';
  if (typeOid === PgType.bytea) return format === 0 ? 'bytea-hex' : 'bytea-raw';
  if (typeOid === PgType.char) return 'null-only';
  if (TEXTUAL.has(typeOid)) return 'text';
  if (typeOid >= FIRST_NORMAL_OID) return format === 0 ? 'text' : undefined;
  // Numbers, dates, uuids, booleans…: a token would not parse as the type; NULL always does.
  return 'null-only';
}

function scanCodec(column: ResultColumn, detectors: boolean): Codec | undefined {
  const { typeOid, format } = column;
  if (typeOid === PgType.json || (typeOid === PgType.jsonb && format === 0)) return 'json';
  if (typeOid === PgType.jsonb) return 'jsonb-binary';
  if (TEXTUAL.has(typeOid) || (TEXT_ARRAYS.has(typeOid) && format === 0)) return 'text';
  // A secret written as bytes (a key file, a token) is found in the bytes read as text.
  if (detectors && typeOid === PgType.bytea) return format === 0 ? 'bytea-hex' : 'bytea-raw';
  if (detectors && typeOid === BYTEA_ARRAY && format === 0) return 'bytea-array-text';
  if (format === 1 && BINARY_ARRAYS.has(typeOid)) {
    const { codec } = BINARY_ARRAYS.get(typeOid)!;
    // JSON elements are worth opening for JSON paths alone; text and bytes only for detectors.
    return detectors || codec === 'json' || codec === 'jsonb-binary' ? 'array-binary' : undefined;
  }
  if (typeOid >= FIRST_NORMAL_OID) return format === 0 ? 'text' : 'user-binary';
  // Card numbers and the like kept as numbers: a finding there nulls the value.
  if (detectors && typeOid === PgType.int8) return format === 0 ? 'null-only' : 'int8-binary';
  if (detectors && typeOid === PgType.numeric) return format === 0 ? 'null-only' : 'numeric-binary';
  return undefined;
}

/** The column becomes NULL (length -1). */
const NULL = null;
/** No replacement: the column stays as it came. */
const UNCHANGED = undefined;
/** A scratch row larger than this is not kept between rows: memory stays bounded after a huge value. */
const KEPT_SCRATCH_BYTES = 1024 * 1024;
const REDACTED_BYTES = Buffer.from(REDACTED, 'latin1');
const ASTERISK = 0x2a;

/**
 * Masks DataRows into one scratch buffer: the bytes before an edited value are copied as they
 * are, the new value is written after its recomputed length, and the finished row is copied out
 * once. Column rules on ASCII text work on the bytes (redact, partial, hash without decoding);
 * scanned text is decoded only when its character counts say a detector could fire.
 */
class DataRowMasker implements ResultMaskPlan {
  readonly active: boolean;
  /** Beyond this column nothing is masked: the row is not even walked past it. */
  private readonly lastActive: number;
  /** How often each column's rule fired; added to the counter's hits when asked. */
  private readonly wholeHits: number[];
  private out = Buffer.allocUnsafe(4096);
  /** The row being written: out[0, outAt) holds message[0, copiedTo) with its edits. */
  private outAt = 0;
  private copiedTo = 0;
  private editing = false;
  /** Decoded bytea hex or escape text; reused. */
  private bytes = Buffer.allocUnsafe(256);

  constructor(
    private readonly actions: readonly (ColumnAction | undefined)[],
    private readonly text: TextMasker,
    private readonly applier: StrategyApplier,
    private readonly counter: HitCounter,
  ) {
    this.lastActive = actions.findLastIndex((a) => a !== undefined);
    this.active = this.lastActive >= 0;
    this.wholeHits = actions.map(() => 0);
  }

  hits(): MaskingHits {
    const hits: Record<string, number> = { ...this.counter.snapshot() };
    this.actions.forEach((action, i) => {
      const n = this.wholeHits[i]!;
      if (action?.kind === 'whole' && n > 0) hits[action.hitKey] = (hits[action.hitKey] ?? 0) + n;
    });
    return hits;
  }

  // DataRow (B): 'D', Int32 length (self-inclusive), Int16 column count, then per column an Int32
  // value length (-1 = NULL) and that many bytes.
  maskDataRow(message: Buffer): Buffer {
    if (!this.active) return message;
    if (message.length < 7) throw new RangeError('a DataRow is shorter than its header; the result cannot be masked');
    const count = (message[5]! << 8) | message[6]!;
    if (count !== this.actions.length) {
      throw new RangeError(`a DataRow has ${count} columns but its RowDescription described ${this.actions.length}; the result cannot be masked`);
    }
    this.editing = false;
    let offset = 7;
    for (let i = 0; i <= this.lastActive; i++) {
      if (offset + 4 > message.length) throw new RangeError('a DataRow ends before its last column; the result cannot be masked');
      const length = int32At(message, offset);
      const start = offset + 4;
      const end = length < 0 ? start : start + length;
      offset = end;
      const action = this.actions[i];
      if (action === undefined || length < 0) continue;
      if (end > message.length) throw new RangeError('a DataRow value runs past the end of its message; the result cannot be masked');
      if (action.kind === 'whole') {
        this.wholeHits[i]!++;
        this.maskWhole(action, message, start, end);
      } else if (action.codec === 'text' && !this.text.hasJsonPaths) {
        this.maskTextInto(message, start, end);
      } else {
        const value = this.scanValue(action, message, start, end);
        if (value !== UNCHANGED) this.writeValue(message, start, end, value);
      }
    }
    if (!this.editing) return message;
    this.reserve(message.length - this.copiedTo);
    this.outAt += copyBytes(message, this.copiedTo, message.length, this.out, this.outAt);
    const row = Buffer.allocUnsafe(this.outAt);
    copyBytes(this.out, 0, this.outAt, row, 0);
    writeInt32At(row, 1, row.length - 1);
    if (this.out.length > KEPT_SCRATCH_BYTES) this.out = Buffer.allocUnsafe(4096);
    return row;
  }

  private maskWhole(action: Extract<ColumnAction, { kind: 'whole' }>, message: Buffer, start: number, end: number): void {
    const { codec, mask } = action;
    if (codec === 'null-only' || mask.strategy === 'null') return this.writeValue(message, start, end, NULL);
    if (codec === 'text') {
      if (mask.strategy === 'redact') return this.writeValue(message, start, end, REDACTED_BYTES);
      // ASCII (most values): characters are bytes, so partial and hash need no decoding.
      if (mask.strategy === 'hash' && isAscii(message, start, end)) {
        const at = this.begin(message, start, HASH_TOKEN_LENGTH);
        return this.commit(this.applier.writeHashToken(message, start, end, this.out, at), at, end);
      }
      if (mask.strategy === 'partial' && isAscii(message, start, end)) {
        const n = end - start;
        const keep = Math.min(mask.keepLast, Math.floor(n / 2));
        const at = this.begin(message, start, n);
        this.out.fill(ASTERISK, at, at + n - keep);
        copyBytes(message, end - keep, end, this.out, at + n - keep);
        return this.commit(at + n, at, end);
      }
    }
    const original = decode(codec, message, start, end);
    const masked = this.applier.apply(original ?? message.toString('hex', start, end), mask.strategy, mask.keepLast);
    this.writeValue(message, start, end, masked === null ? NULL : encode(codec, masked));
  }

  private scanValue(action: Extract<ColumnAction, { kind: 'scan' }>, message: Buffer, start: number, end: number): WireValue | null | undefined {
    if (end - start < 3) return UNCHANGED;
    switch (action.codec) {
      case 'text':
        return this.text.hasJsonPaths ? this.scanDecoded('text', message, start, end) : this.scanText(message, start, end);
      case 'bytea-raw':
        return this.scanBytes(message, start, end);
      case 'bytea-hex':
        return this.scanByteaText(message, start, end);
      case 'array-binary':
        return this.scanArray(action.element!, message, start, end);
      case 'bytea-array-text':
        return this.scanByteaArrayText(message, start, end);
      default:
        return this.scanDecoded(action.codec, message, start, end);
    }
  }

  /**
   * A text column under detectors only, written into the row as it is masked: the bytes between
   * findings are copied from the message and each finding's replacement written after them, with
   * no masked string built. Text that is not ASCII takes the decoding path (it is folded).
   */
  private maskTextInto(message: Buffer, start: number, end: number): void {
    if (end - start < 3) return;
    const traits = asciiTraitsOf(message, start, end);
    if (traits === undefined) {
      const value = this.scanText(message, start, end);
      if (value !== UNCHANGED) this.writeValue(message, start, end, value);
      return;
    }
    if (!this.text.detectors.mayFind(traits)) return;
    const original = message.toString('latin1', start, end);
    const findings = this.text.detectors.scan(original, traits);
    if (findings.length === 0) return;
    let room = end - start;
    const replacements: string[] = [];
    for (const finding of findings) {
      const replacement = this.text.replacement(original, finding, this.counter);
      replacements.push(replacement);
      room += replacement.length * 3;
    }
    const valueStart = this.begin(message, start, room);
    let at = valueStart;
    let from = start;
    for (let k = 0; k < findings.length; k++) {
      const finding = findings[k]!;
      at += copyBytes(message, from, start + finding.start, this.out, at);
      at += writeText(this.out, at, replacements[k]!);
      from = start + finding.end;
    }
    at += copyBytes(message, from, end, this.out, at);
    this.commit(at, valueStart, end);
  }

  /** Text under detectors only: clean ASCII text is rejected on its character counts, undecoded. */
  private scanText(message: Buffer, start: number, end: number): string | undefined {
    const traits = asciiTraitsOf(message, start, end);
    if (traits === undefined) {
      const original = message.toString('utf8', start, end);
      const masked = this.text.maskDetected(original, this.counter);
      return masked === original ? UNCHANGED : masked;
    }
    if (!this.text.detectors.mayFind(traits)) return UNCHANGED;
    const original = message.toString('latin1', start, end);
    const masked = this.text.maskUnfolded(original, traits, this.counter);
    return masked === original ? UNCHANGED : masked;
  }

  /**
   * Bytes (bytea, binary array elements) read as text: UTF-8 when they are valid UTF-8, else
   * latin1, one character a byte, so text inside binary data is still seen and the bytes around
   * a finding come back as they were. A masked value is the masked text in the same encoding.
   */
  private scanBytes(bytes: Buffer, start: number, end: number): Buffer | undefined {
    if (end - start < 3) return UNCHANGED;
    const traits = asciiTraitsOf(bytes, start, end);
    if (traits !== undefined) {
      if (!this.text.detectors.mayFind(traits)) return UNCHANGED;
      const original = bytes.toString('latin1', start, end);
      const masked = this.text.maskUnfolded(original, traits, this.counter);
      return masked === original ? UNCHANGED : Buffer.from(masked, 'latin1');
    }
    if (isUtf8(bytes.subarray(start, end))) {
      const original = bytes.toString('utf8', start, end);
      const masked = this.text.maskDetected(original, this.counter);
      return masked === original ? UNCHANGED : Buffer.from(masked, 'utf8');
    }
    // Not text in any Unicode sense: the bytes above 0x7f are not look-alikes of anything, so
    // there is nothing to fold; they only separate the ASCII runs a secret would be written in.
    const counts = latin1TraitsOf(bytes, start, end);
    if (!this.text.detectors.mayFind(counts)) return UNCHANGED;
    const original = bytes.toString('latin1', start, end);
    const masked = this.text.maskUnfolded(original, counts, this.counter);
    return masked === original ? UNCHANGED : Buffer.from(masked, 'latin1');
  }

  /** bytea in text format: its bytes decoded from hex (or the escape format), scanned, and written back the same way. */
  private scanByteaText(message: Buffer, start: number, end: number): string | undefined {
    const hex = message[start] === 0x5c && message[start + 1] === 0x78;
    const n = hex ? this.decodeHex(message, start + 2, end) : this.decodeEscape(message, start, end);
    if (n < 0) throw new RangeError('a bytea value in text format is neither hex nor escape format; the result cannot be masked');
    const masked = this.scanBytes(this.bytes, 0, n);
    if (this.bytes.length > KEPT_SCRATCH_BYTES) this.bytes = Buffer.allocUnsafe(256);
    if (masked === UNCHANGED) return UNCHANGED;
    return hex ? `\\x${masked.toString('hex')}` : encodeByteaEscape(masked);
  }

  /**
   * bytea[] in text format (array_out): braces and commas, each element either quoted (with \\
   * and \" escapes: every hex value, being "\x…") or bare (escape format without backslashes),
   * NULL bare; a "[1:2]=" prefix when the bounds are not 1. A masked element is written quoted.
   */
  private scanByteaArrayText(message: Buffer, start: number, end: number): string | undefined {
    const literal = message.toString('latin1', start, end);
    const malformed = () => new RangeError('a bytea[] value in text format is not an array literal; the result cannot be masked');
    let out = '';
    let copied = 0;
    let i = literal.indexOf('{');
    if (i < 0) throw malformed();
    while (i < literal.length) {
      const c = literal[i]!;
      if (c === '{' || c === '}' || c === ',') {
        i += 1;
        continue;
      }
      const elementStart = i;
      let element = '';
      if (c === '"') {
        for (i += 1; i < literal.length && literal[i] !== '"'; i += 1) {
          if (literal[i] === '\\') i += 1;
          element += literal[i] ?? '';
        }
        if (i >= literal.length) throw malformed();
        i += 1;
      } else {
        while (i < literal.length && literal[i] !== ',' && literal[i] !== '}') element += literal[i++];
        if (element === 'NULL') continue;
      }
      const bytes = Buffer.from(element, 'latin1');
      const masked = this.scanByteaText(bytes, 0, bytes.length);
      if (masked === UNCHANGED) continue;
      out += `${literal.slice(copied, elementStart)}"${masked.replace(/[\\"]/g, '\\$&')}"`;
      copied = i;
    }
    return copied === 0 ? UNCHANGED : out + literal.slice(copied);
  }

  private decodeHex(message: Buffer, start: number, end: number): number {
    if ((end - start) % 2 !== 0) return -1;
    const n = (end - start) / 2;
    if (this.bytes.length < n) this.bytes = Buffer.allocUnsafe(n);
    const bytes = this.bytes;
    for (let i = 0, at = start; i < n; i++, at += 2) {
      const high = HEX_VALUE[message[at]!]!;
      const low = HEX_VALUE[message[at + 1]!]!;
      if (high > 15 || low > 15) return -1;
      bytes[i] = (high << 4) | low;
    }
    return n;
  }

  /** bytea escape format (byteaout with bytea_output = escape): '\\' for a backslash, '\ooo' for other bytes, the rest as is. */
  private decodeEscape(message: Buffer, start: number, end: number): number {
    if (this.bytes.length < end - start) this.bytes = Buffer.allocUnsafe(end - start);
    const bytes = this.bytes;
    let n = 0;
    for (let at = start; at < end; ) {
      const c = message[at]!;
      if (c !== 0x5c) {
        bytes[n++] = c;
        at += 1;
      } else if (message[at + 1] === 0x5c) {
        bytes[n++] = 0x5c;
        at += 2;
      } else {
        if (at + 3 >= end) return -1;
        const d1 = message[at + 1]! - 48;
        const d2 = message[at + 2]! - 48;
        const d3 = message[at + 3]! - 48;
        if (!(d1 >= 0 && d1 <= 3 && d2 >= 0 && d2 <= 7 && d3 >= 0 && d3 <= 7)) return -1;
        bytes[n++] = d1 * 64 + d2 * 8 + d3;
        at += 4;
      }
    }
    return n;
  }

  /** A binary array of a text-like type: each element scanned, and the array rebuilt with new lengths when one changed. */
  private scanArray(element: { readonly oid: number; readonly codec: ElementCodec }, message: Buffer, start: number, end: number): Buffer | undefined {
    const malformed = () => new RangeError(`a binary array of type ${element.oid} does not have the layout of one; the result cannot be masked`);
    if (end - start < 12) throw malformed();
    const dimensions = message.readInt32BE(start);
    if (dimensions < 0 || dimensions > 6 || message.readUInt32BE(start + 8) !== element.oid || end - start < 12 + dimensions * 8) throw malformed();
    let count = dimensions === 0 ? 0 : 1;
    for (let d = 0; d < dimensions; d++) count *= message.readInt32BE(start + 12 + d * 8);
    let at = start + 12 + dimensions * 8;
    let edits: Edit[] | undefined;
    for (let k = 0; k < count; k++) {
      if (at + 4 > end) throw malformed();
      const length = message.readInt32BE(at);
      const valueStart = at + 4;
      const valueEnd = length < 0 ? valueStart : valueStart + length;
      if (valueEnd > end) throw malformed();
      if (length >= 3) {
        const value =
          element.codec === 'bytea-raw'
            ? this.scanBytes(message, valueStart, valueEnd)
            : element.codec === 'text' && !this.text.hasJsonPaths
              ? this.scanText(message, valueStart, valueEnd)
              : this.scanDecoded(element.codec, message, valueStart, valueEnd);
        if (value !== UNCHANGED && value !== NULL) (edits ??= []).push({ header: at, end: valueEnd, value });
      }
      at = valueEnd;
    }
    if (at !== end) throw malformed();
    return edits ? spliceValues(message, start, end, edits) : UNCHANGED;
  }

  /** The general path: the value decoded to text, masked (JSON paths and detectors), encoded back. */
  private scanDecoded(codec: Codec, message: Buffer, start: number, end: number): WireValue | null | undefined {
    const original = decode(codec, message, start, end);
    if (original === undefined) return UNCHANGED;
    const masked = this.text.mask(original, this.counter, codec === 'json' || codec === 'jsonb-binary' ? 'always' : 'if-json');
    if (masked === original) return UNCHANGED;
    // JSON paths and detectors leave a JSON document valid JSON: no quoting needed.
    return encode(codec, masked, true);
  }

  private writeValue(message: Buffer, start: number, end: number, value: WireValue | null): void {
    if (value === null) {
      this.begin(message, start, 0);
      writeInt32At(this.out, this.outAt, -1);
      this.outAt += 4;
      this.copiedTo = end;
      return;
    }
    if (typeof value === 'string') {
      const at = this.begin(message, start, value.length * 3);
      return this.commit(at + this.out.write(value, at, 'utf8'), at, end);
    }
    const at = this.begin(message, start, value.length);
    this.commit(at + copyBytes(value, 0, value.length, this.out, at), at, end);
  }

  /**
   * Starts replacing the value at message[start] (its length just before it): what lies between
   * the last edit and it is copied, room is made for `room` bytes, and where they go is returned.
   */
  private begin(message: Buffer, start: number, room: number): number {
    if (!this.editing) {
      this.editing = true;
      this.outAt = 0;
      this.copiedTo = 0;
    }
    const header = start - 4;
    this.reserve(header - this.copiedTo + 4 + room);
    this.outAt += copyBytes(message, this.copiedTo, header, this.out, this.outAt);
    return this.outAt + 4;
  }

  /** Ends a value begun at `at` and written up to `valueEnd`: its length goes before it. */
  private commit(valueEnd: number, at: number, end: number): void {
    writeInt32At(this.out, at - 4, valueEnd - at);
    this.outAt = valueEnd;
    this.copiedTo = end;
  }

  private reserve(n: number): void {
    if (this.outAt + n <= this.out.length) return;
    const grown = Buffer.allocUnsafe(Math.max(this.outAt + n, this.out.length * 2));
    this.out.copy(grown, 0, 0, this.outAt);
    this.out = grown;
  }
}

/**
 * Copies from[start, end) to to[at]; returns the count. Most runs between edits are a few dozen
 * bytes, where a loop beats Buffer.copy's call into the runtime.
 */
function copyBytes(from: Uint8Array, start: number, end: number, to: Uint8Array, at: number): number {
  const n = end - start;
  if (n > 64) to.set(from.subarray(start, end), at);
  else for (let i = 0; i < n; i++) to[at + i] = from[start + i]!;
  return n;
}

/** Writes text as UTF-8 at out[at] (room made already); returns the byte count. Tokens are ASCII, written without a call into the runtime. */
function writeText(out: Buffer, at: number, text: string): number {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0x80) return out.write(text, at, 'utf8');
    out[at + i] = c;
  }
  return text.length;
}

function writeInt32At(bytes: Uint8Array, at: number, value: number): void {
  bytes[at] = value >>> 24;
  bytes[at + 1] = value >>> 16;
  bytes[at + 2] = value >>> 8;
  bytes[at + 3] = value;
}

/** Buffer.readInt32BE without its argument checks, for offsets the caller has checked: a call per column adds up over millions of rows. */
function int32At(bytes: Buffer, at: number): number {
  return (bytes[at]! << 24) | (bytes[at + 1]! << 16) | (bytes[at + 2]! << 8) | bytes[at + 3]!;
}

function isAscii(bytes: Buffer, start: number, end: number): boolean {
  for (let i = start; i < end; i++) if (bytes[i]! >= 0x80) return false;
  return true;
}

/** Hex digit values; 16 and above: not a hex digit. */
const HEX_VALUE = new Uint8Array(256).fill(255);
for (let d = 0; d < 10; d++) HEX_VALUE[48 + d] = d;
for (let d = 0; d < 6; d++) HEX_VALUE[65 + d] = HEX_VALUE[97 + d] = 10 + d;

/** bytea escape format of bytes: printable ASCII as is, a backslash doubled, anything else \ooo. */
function encodeByteaEscape(bytes: Buffer): string {
  let out = '';
  for (const b of bytes) {
    if (b === 0x5c) out += '\\\\';
    else if (b >= 0x20 && b < 0x7f) out += String.fromCharCode(b);
    else out += `\\${b.toString(8).padStart(3, '0')}`;
  }
  return out;
}

function decode(codec: Codec, message: Buffer, start: number, end: number): string | undefined {
  switch (codec) {
    case 'text':
    case 'json':
    case 'null-only':
      return message.toString('utf8', start, end);
    case 'jsonb-binary':
      return message[start] === 1 ? message.toString('utf8', start + 1, end) : undefined;
    case 'bytea-hex':
      return message.toString('utf8', start, end);
    case 'bytea-raw':
      return message.toString('latin1', start, end);
    case 'int8-binary':
      return end - start === 8 ? message.readBigInt64BE(start).toString() : undefined;
    case 'numeric-binary':
      return decodeNumeric(message, start, end);
    case 'user-binary': {
      const bytes = message.subarray(start, end);
      // Text-shaped values only: anything else is a binary structure the plan does not understand.
      if (!isUtf8(bytes) || bytes.some((b) => b < 0x20 && b !== 0x09 && b !== 0x0a && b !== 0x0d)) return undefined;
      return bytes.toString('utf8');
    }
    case 'array-binary':
    case 'bytea-array-text':
      return undefined;
  }
}

/** The wire bytes of a masked value (a whole-column token is quoted to stay JSON); null → NULL for codecs that cannot carry text. */
function encode(codec: Codec, masked: string, isDocument = false): WireValue | null {
  switch (codec) {
    case 'text':
    case 'user-binary':
      return masked;
    case 'json':
      return isDocument ? masked : JSON.stringify(masked);
    case 'jsonb-binary':
      return Buffer.concat([Buffer.of(1), Buffer.from(isDocument ? masked : JSON.stringify(masked), 'utf8')]);
    case 'bytea-hex':
      return `\\x${Buffer.from(masked, 'utf8').toString('hex')}`;
    case 'bytea-raw':
      return masked;
    case 'null-only':
    case 'int8-binary':
    case 'numeric-binary':
    case 'array-binary':
    case 'bytea-array-text':
      return NULL;
  }
}

// numeric binary: Int16 ndigits, Int16 weight, Int16 sign, Int16 dscale, then ndigits base-10000 digits.
function decodeNumeric(message: Buffer, start: number, end: number): string | undefined {
  if (end - start < 8) return undefined;
  const ndigits = message.readInt16BE(start);
  const weight = message.readInt16BE(start + 2);
  const sign = message.readUInt16BE(start + 4);
  if (sign !== 0 && sign !== 0x4000) return undefined;
  if (end - start !== 8 + ndigits * 2 || weight < 0 || weight > 10) return undefined;
  let digits = '';
  for (let k = 0; k <= weight; k++) {
    const d = k < ndigits ? message.readInt16BE(start + 8 + k * 2) : 0;
    digits += k === 0 ? String(d) : String(d).padStart(4, '0');
  }
  return (sign === 0x4000 ? '-' : '') + digits;
}

/** A column's new value: text is written into the new row as UTF-8 directly, without a Buffer of its own. */
type WireValue = string | Buffer;

interface Edit {
  /** Where the value's Int32 length is. */
  readonly header: number;
  readonly end: number;
  readonly value: WireValue;
}

/** message[start, end) (a run of length-prefixed values) with the edited values replaced and their lengths recomputed. */
function spliceValues(message: Buffer, start: number, end: number, edits: readonly Edit[]): Buffer {
  let size = end - start;
  const lengths = edits.map((e) => (typeof e.value === 'string' ? Buffer.byteLength(e.value, 'utf8') : e.value.length));
  edits.forEach((e, k) => (size += lengths[k]! - (e.end - e.header - 4)));
  const out = Buffer.allocUnsafe(size);
  let from = start;
  let to = 0;
  edits.forEach((e, k) => {
    to += message.copy(out, to, from, e.header);
    to = out.writeInt32BE(lengths[k]!, to);
    to += typeof e.value === 'string' ? out.write(e.value, to, 'utf8') : e.value.copy(out, to);
    from = e.end;
  });
  message.copy(out, to, from, end);
  return out;
}
