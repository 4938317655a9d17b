import { fingerprintSync, loadModule, parseSync } from 'libpg-query';

/** One statement of a client's query, as PostgreSQL's own parser delimits it. */
export interface SqlStatement {
  readonly text: string;
  /** libpg_query fingerprint: the same for statements that differ only in constants. */
  readonly fingerprint: string;
  /** False when the parser could not read it: such a statement is decided as opaque, never allowed by accident. */
  readonly parsed: boolean;
  /** Byte offsets of the statement in the query (UTF-8), before trimming: [start, end). */
  readonly start: number;
  readonly end: number;
}

let loaded: Promise<void> | undefined;

/** The parser is WASM: load it once before the first statement (at start-up, not on the hot path). */
export function loadSqlParser(): Promise<void> {
  loaded ??= loadModule();
  return loaded;
}

/**
 * Splits a simple-protocol Query into its statements. A string the parser cannot read stays one
 * opaque statement: the target would refuse it anyway, and policy decides opaque text explicitly.
 */
export function splitStatements(query: string): SqlStatement[] {
  if (query.trim() === '') return [];
  // Most queries are one statement: without a semicolon before the end there can be no second
  // one (two statements run together are a syntax error, which the fingerprint refuses too), and
  // the fingerprint alone parses it — half the cost of parsing it to split it and again to
  // fingerprint it. Comments may hide a semicolon, so only text free of comment markers qualifies.
  const body = query.replace(/[\s;]+$/, '');
  if (body.trim() === '') return [];
  if (!body.includes(';') && !body.includes('--') && !body.includes('/*')) {
    const start = query.length - query.trimStart().length;
    try {
      return [{ text: body.trim(), fingerprint: fingerprintSync(body), parsed: true, start: Buffer.byteLength(query.slice(0, start)), end: Buffer.byteLength(body) }];
    } catch {
      return [{ text: query, fingerprint: '', parsed: false, start: 0, end: Buffer.byteLength(query) }];
    }
  }
  let stmts: { stmt_location?: number; stmt_len?: number }[];
  try {
    stmts = parseSync(query).stmts ?? [];
  } catch {
    return [{ text: query, fingerprint: '', parsed: false, start: 0, end: Buffer.byteLength(query) }];
  }
  // Locations are byte offsets into the UTF-8 query.
  const bytes = Buffer.from(query, 'utf8');
  return stmts.map((s) => {
    const start = s.stmt_location ?? 0;
    const end = s.stmt_len === undefined || s.stmt_len === 0 ? bytes.length : start + s.stmt_len;
    const text = bytes.toString('utf8', start, end).trim();
    return { text, fingerprint: safeFingerprint(text), parsed: true, start, end };
  });
}

function safeFingerprint(text: string): string {
  try {
    return fingerprintSync(text);
  } catch {
    return '';
  }
}

/**
 * The statement the gateway sends in place of a denied one. The target itself then raises the
 * error at exactly the point the denied statement stood, so everything PostgreSQL does after an
 * error — abort the transaction block, roll back the implicit transaction of a multi-statement
 * query, skip the rest of an extended-protocol batch until Sync — happens as it would for any
 * failing statement. Statements before it in the same message are never silently committed.
 */
export function denialStatement(sqlstate: string, message: string): string {
  if (!/^[0-9A-Z]{5}$/.test(sqlstate)) throw new TypeError(`'${sqlstate}' is not a SQLSTATE`);
  let tag = 'tracegate';
  while (message.includes(`$${tag}$`)) tag += '_';
  const literal = `'${message.replaceAll("'", "''")}'`;
  return `DO $${tag}$ BEGIN RAISE EXCEPTION USING ERRCODE = '${sqlstate}', MESSAGE = ${literal}; END $${tag}$`;
}
