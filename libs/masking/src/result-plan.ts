import { isUtf8 } from 'node:buffer';
import type { MaskingHits } from './profile.js';
import type { MaskingStrategy, StrategyApplier } from './strategies.js';
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
  /** bytea in text format: \x and hex digits. */
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
  | 'user-binary';

/** What happens to one column's values; undefined in the plan = passed through untouched. */
type ColumnAction =
  | { readonly kind: 'whole'; readonly codec: Codec; readonly mask: WholeColumnMask; readonly hitKey: string }
  | { readonly kind: 'scan'; readonly codec: Codec };

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
    actions.push(codec ? { kind: 'scan', codec } : undefined);
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
  if (typeOid >= FIRST_NORMAL_OID) return format === 0 ? 'text' : 'user-binary';
  // Card numbers and the like kept as numbers: a finding there nulls the value.
  if (detectors && typeOid === PgType.int8) return format === 0 ? 'null-only' : 'int8-binary';
  if (detectors && typeOid === PgType.numeric) return format === 0 ? 'null-only' : 'numeric-binary';
  return undefined;
}

/** No replacement: the column stays as it came. */
const UNCHANGED = undefined;
/** The column becomes NULL (length -1). */
const NULL = null;

class DataRowMasker implements ResultMaskPlan {
  readonly active: boolean;
  /** Beyond this column nothing is masked: the row is not even walked past it. */
  private readonly lastActive: number;

  constructor(
    private readonly actions: readonly (ColumnAction | undefined)[],
    private readonly text: TextMasker,
    private readonly applier: StrategyApplier,
    private readonly counter: HitCounter,
  ) {
    this.lastActive = actions.findLastIndex((a) => a !== undefined);
    this.active = this.lastActive >= 0;
  }

  hits(): MaskingHits {
    return this.counter.snapshot();
  }

  // DataRow (B): 'D', Int32 length (self-inclusive), Int16 column count, then per column an Int32
  // value length (-1 = NULL) and that many bytes.
  maskDataRow(message: Buffer): Buffer {
    if (!this.active) return message;
    const count = message.readInt16BE(5);
    if (count !== this.actions.length) {
      throw new RangeError(`a DataRow has ${count} columns but its RowDescription described ${this.actions.length}; the result cannot be masked`);
    }
    let offset = 7;
    let edits: Edit[] | undefined;
    for (let i = 0; i <= this.lastActive; i++) {
      const length = message.readInt32BE(offset);
      const start = offset + 4;
      const end = length < 0 ? start : start + length;
      offset = end;
      const action = this.actions[i];
      if (action === undefined || length < 0) continue;
      const value = action.kind === 'whole' ? this.maskWhole(action, message, start, end) : this.scanValue(action.codec, message, start, end);
      if (value !== UNCHANGED) (edits ??= []).push({ header: start - 4, end, value });
    }
    return edits ? splice(message, edits) : message;
  }

  private maskWhole(action: Extract<ColumnAction, { kind: 'whole' }>, message: Buffer, start: number, end: number): WireValue | null {
    this.counter.add(action.hitKey);
    const { codec, mask } = action;
    if (codec === 'null-only' || mask.strategy === 'null') return NULL;
    const original = decode(codec, message, start, end);
    const masked = this.applier.apply(original ?? message.toString('hex', start, end), mask.strategy, mask.keepLast);
    return masked === null ? NULL : encode(codec, masked);
  }

  private scanValue(codec: Codec, message: Buffer, start: number, end: number): WireValue | null | undefined {
    if (end - start < 3) return UNCHANGED;
    const original = decode(codec, message, start, end);
    if (original === undefined) return UNCHANGED;
    const masked = this.text.mask(original, this.counter, codec === 'json' || codec === 'jsonb-binary' ? 'always' : 'if-json');
    if (masked === original) return UNCHANGED;
    // JSON paths and detectors leave a JSON document valid JSON: no quoting needed.
    return encode(codec, masked, true);
  }
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
  readonly header: number;
  readonly end: number;
  readonly value: WireValue | null;
}

/** A new DataRow with the edited columns replaced and the lengths recomputed. */
function splice(message: Buffer, edits: readonly Edit[]): Buffer {
  let size = message.length;
  const lengths = edits.map((e) => (e.value === null ? 0 : typeof e.value === 'string' ? Buffer.byteLength(e.value, 'utf8') : e.value.length));
  edits.forEach((e, k) => (size += lengths[k]! - (e.end - e.header - 4)));
  const out = Buffer.allocUnsafe(size);
  let from = 0;
  let to = 0;
  edits.forEach((e, k) => {
    to += message.copy(out, to, from, e.header);
    if (e.value === null) {
      to = out.writeInt32BE(-1, to);
    } else {
      to = out.writeInt32BE(lengths[k]!, to);
      to += typeof e.value === 'string' ? out.write(e.value, to, 'utf8') : e.value.copy(out, to);
    }
    from = e.end;
  });
  message.copy(out, to, from);
  out.writeInt32BE(size - 1, 1);
  return out;
}
