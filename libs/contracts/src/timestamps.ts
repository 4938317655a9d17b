import type { Timestamp } from './generated/google/protobuf/timestamp.js';

/** A Date as google.protobuf.Timestamp, as ts-proto types it (useDate=false, forceLong=number). */
export function timestampOf(date: Date): Timestamp {
  const ms = date.getTime();
  const seconds = Math.floor(ms / 1000);
  return { seconds, nanos: (ms - seconds * 1000) * 1_000_000 };
}
