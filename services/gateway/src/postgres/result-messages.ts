import { BackendType, readReportFields } from './backend-framer.js';
import type { MaskingHits, ResultColumn } from './ports.js';

// Reading and writing the backend messages the gateway rewrites when it masks a result
// ("Message Formats": RowDescription, DataRow, CopyData, ErrorResponse/NoticeResponse).

/** A message from its type and body. */
export function backendMessage(type: number, body: Buffer): Buffer {
  const message = Buffer.allocUnsafe(5 + body.length);
  message[0] = type;
  message.writeInt32BE(body.length + 4, 1);
  body.copy(message, 5);
  return message;
}

/** RowDescription: Int16 count, then per field name, table OID, attribute number, type OID, size, modifier, format. */
export function readRowDescription(body: Buffer): ResultColumn[] {
  const count = body.readInt16BE(0);
  const columns: ResultColumn[] = [];
  let offset = 2;
  for (let i = 0; i < count; i += 1) {
    const end = body.indexOf(0, offset);
    if (end < 0) throw new RangeError('a RowDescription field name has no terminator');
    const name = body.toString('utf8', offset, end);
    offset = end + 1;
    const tableOid = body.readUInt32BE(offset);
    const columnId = body.readInt16BE(offset + 4);
    const typeOid = body.readUInt32BE(offset + 6);
    const format = body.readInt16BE(offset + 16) === 1 ? 1 : 0;
    offset += 18;
    columns.push({ name, tableOid, columnId, typeOid, format });
  }
  return columns;
}

/**
 * The formats a Bind asked for, applied to a statement's description (which a Describe of the
 * statement reports as text): none means all text, one applies to every column, else one each.
 */
export function withResultFormats(columns: readonly ResultColumn[], formats: readonly number[]): ResultColumn[] {
  return columns.map((column, i) => ({ ...column, format: (formats.length === 0 ? 0 : formats.length === 1 ? formats[0] : formats[i]) === 1 ? 1 : 0 }));
}

/** A DataRow's values: text columns as strings, binary ones base64, NULL as null. */
export function readDataRow(message: Buffer, columns: readonly ResultColumn[] | undefined): (string | null)[] {
  const count = message.readInt16BE(5);
  const values: (string | null)[] = [];
  let offset = 7;
  for (let i = 0; i < count; i += 1) {
    const length = message.readInt32BE(offset);
    offset += 4;
    if (length < 0) {
      values.push(null);
      continue;
    }
    values.push(message.toString(columns?.[i]?.format === 1 ? 'base64' : 'utf8', offset, offset + length));
    offset += length;
  }
  return values;
}

/** The report fields that may echo data (message, detail, hint, context, query): where masking looks. */
const DATA_FIELDS = new Set(['M', 'D', 'H', 'W', 'q']);

/**
 * An ErrorResponse or NoticeResponse with its data-bearing fields redacted (a unique violation's
 * DETAIL quotes the duplicate value). Undefined when nothing changed.
 */
export function redactReport(type: number, body: Buffer, redact: (text: string) => { text: string; hits: MaskingHits }, onHits: (hits: MaskingHits) => void): Buffer | undefined {
  const fields = readReportFields(body);
  let changed = false;
  const parts: Buffer[] = [];
  for (const [code, value] of fields) {
    let text = value;
    if (DATA_FIELDS.has(code)) {
      const redacted = redact(value);
      if (redacted.text !== value) {
        changed = true;
        text = redacted.text;
        onHits(redacted.hits);
      }
    }
    parts.push(Buffer.from(code, 'latin1'), Buffer.from(text.replaceAll('\0', ''), 'utf8'), Buffer.from([0]));
  }
  if (!changed) return undefined;
  parts.push(Buffer.from([0]));
  return backendMessage(type, Buffer.concat(parts));
}

export function copyData(data: Buffer): Buffer {
  return backendMessage(BackendType.CopyData, data);
}

/** Adds one result's masking hits to a statement's tally. */
export function addHits(total: Record<string, number>, hits: MaskingHits): void {
  for (const [name, count] of Object.entries(hits)) total[name] = (total[name] ?? 0) + count;
}
