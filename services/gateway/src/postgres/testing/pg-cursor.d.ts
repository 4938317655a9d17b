// pg-cursor ships no types; the part the tests use.
declare module 'pg-cursor' {
  import type { Submittable } from 'pg';

  export default class Cursor<Row = Record<string, unknown>> implements Submittable {
    constructor(text: string, values?: readonly unknown[], config?: { rowMode?: 'array' });
    submit: Submittable['submit'];
    /** Up to `rows` rows: one Execute with max_rows = `rows`; an empty array when the portal is done. */
    read(rows: number): Promise<Row[]>;
    close(): Promise<void>;
  }
}
