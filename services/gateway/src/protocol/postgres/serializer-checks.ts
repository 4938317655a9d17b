// Values a message cannot carry are refused with RangeError rather than truncated or mangled on the wire:
// they are a bug in the gateway's own code, never something to send.

export function cstring(value: string, field: string): string {
  if (value.includes('\0')) {
    throw new RangeError(`the ${field} contains a NUL character, which would end it early on the wire`);
  }
  return value;
}

/** Element counts are Int16 on the wire, read unsigned by PostgreSQL. */
export function count(value: number, elements: string): number {
  if (value > 0xffff) {
    throw new RangeError(`${value} ${elements} exceed the protocol's maximum of 65535`);
  }
  return value;
}

export function int16(value: number, field: string): number {
  return integer(value, -0x8000, 0x7fff, field);
}

export function uint16(value: number, field: string): number {
  return integer(value, 0, 0xffff, field);
}

export function int32(value: number, field: string): number {
  return integer(value, -0x80000000, 0x7fffffff, field);
}

export function uint32(value: number, field: string): number {
  return integer(value, 0, 0xffffffff, field);
}

export function integer(value: number, min: number, max: number, field: string): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`the ${field} must be an integer from ${min} to ${max}, not ${value}`);
  }
  return value;
}
