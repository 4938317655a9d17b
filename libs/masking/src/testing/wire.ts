import type { ResultColumn } from '../result-plan.js';

/** DataRow (B) bytes: 'D', Int32 length, Int16 count, then Int32 length (-1 = NULL) and bytes per column. */
export function dataRow(values: readonly (Buffer | string | null)[]): Buffer {
  const parts = values.map((v) => (v === null ? null : typeof v === 'string' ? Buffer.from(v, 'utf8') : v));
  const size = 1 + 4 + 2 + parts.reduce((n, p) => n + 4 + (p?.length ?? 0), 0);
  const out = Buffer.alloc(size);
  out.write('D', 0, 'latin1');
  out.writeInt32BE(size - 1, 1);
  out.writeInt16BE(parts.length, 5);
  let at = 7;
  for (const p of parts) {
    at = out.writeInt32BE(p === null ? -1 : p.length, at);
    if (p) at += p.copy(out, at);
  }
  return out;
}

/** The column values of a DataRow, checking that every length adds up. */
export function readDataRow(message: Buffer): (Buffer | null)[] {
  if (message[0] !== 0x44) throw new Error('not a DataRow');
  if (message.readInt32BE(1) !== message.length - 1) throw new Error(`DataRow length ${message.readInt32BE(1)} but ${message.length - 1} bytes follow the type`);
  const count = message.readInt16BE(5);
  const values: (Buffer | null)[] = [];
  let at = 7;
  for (let i = 0; i < count; i++) {
    const length = message.readInt32BE(at);
    at += 4;
    if (length < 0) values.push(null);
    else {
      values.push(message.subarray(at, at + length));
      at += length;
    }
  }
  if (at !== message.length) throw new Error(`DataRow has ${message.length - at} trailing bytes`);
  return values;
}

export function textColumns(...names: string[]): ResultColumn[] {
  return names.map((name, i) => ({ name, tableOid: 16500, columnId: i + 1, typeOid: 25, format: 0 }));
}

/** A one-dimensional array in binary format (array_send): dimensions, has-nulls, element OID, size and lower bound, then the elements. */
export function binaryArray(elementOid: number, values: readonly (Buffer | string | null)[]): Buffer {
  const parts = values.map((v) => (v === null ? null : typeof v === 'string' ? Buffer.from(v, 'utf8') : v));
  const out = Buffer.alloc(20 + parts.reduce((n, p) => n + 4 + (p?.length ?? 0), 0));
  out.writeInt32BE(1, 0);
  out.writeInt32BE(parts.includes(null) ? 1 : 0, 4);
  out.writeUInt32BE(elementOid, 8);
  out.writeInt32BE(parts.length, 12);
  out.writeInt32BE(1, 16);
  let at = 20;
  for (const p of parts) {
    at = out.writeInt32BE(p === null ? -1 : p.length, at);
    if (p) at += p.copy(out, at);
  }
  return out;
}

/** The elements of a one-dimensional binary array, checking that every length adds up. */
export function readBinaryArray(value: Buffer): (Buffer | null)[] {
  const dimensions = value.readInt32BE(0);
  const count = dimensions === 0 ? 0 : value.readInt32BE(12);
  const elements: (Buffer | null)[] = [];
  let at = 12 + dimensions * 8;
  for (let k = 0; k < count; k++) {
    const length = value.readInt32BE(at);
    at += 4;
    elements.push(length < 0 ? null : value.subarray(at, at + length));
    if (length > 0) at += length;
  }
  if (at !== value.length) throw new Error(`binary array has ${value.length - at} trailing bytes`);
  return elements;
}
