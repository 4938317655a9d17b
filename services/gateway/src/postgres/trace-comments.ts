import { scanSync } from 'libpg-query';

/**
 * How an agent attaches a reasoning trace to a statement, in sqlcommenter style
 * (https://google.github.io/sqlcommenter/spec/): a comment of `key='url-encoded value'` pairs,
 * at the start or end of the statement.
 *
 *   SELECT * FROM invoices /*tracegate_trace_id='t-0193…'*\/
 *   /*tracegate_trace='%7B%22confidence%22%3A0.9%2C…%7D'*\/ DELETE FROM carts WHERE …
 *
 * The gateway takes these pairs out before the statement goes anywhere: the target never sees a
 * trace, and the text policy and the audit trail see is the statement itself.
 */
export interface TraceAttachment {
  /** A trace submitted ahead of the statement (TraceService.Submit). */
  readonly traceId?: string;
  /** A small trace carried inline: its JSON text, decoded. */
  readonly inlineTrace?: string;
}

export interface TraceComment {
  /** Byte offset of the comment in the query: the statement whose span holds it owns the trace. */
  readonly offset: number;
  readonly attachment: TraceAttachment;
}

export interface BlankedQuery {
  /**
   * The query with every tracegate pair removed. A comment that held only tracegate pairs becomes
   * spaces of the same byte length, so statement offsets are unchanged; other sqlcommenter pairs
   * (traceparent, application tags) stay for the target.
   */
  readonly text: string;
  readonly comments: readonly TraceComment[];
  /** A tracegate comment that could not be read: the statement is refused with this sentence. */
  readonly problem?: string;
}

const KEY_PREFIX = 'tracegate_';
const TRACE_ID = 'tracegate_trace_id';
const INLINE_TRACE = 'tracegate_trace';

/** The fast path: almost no statement mentions tracegate at all. */
export function mentionsTrace(query: string): boolean {
  return query.includes(KEY_PREFIX);
}

/**
 * Finds sqlcommenter comments with tracegate pairs. The scanner is PostgreSQL's own, so text that
 * only looks like a comment (inside a string literal or a dollar-quoted body) is never touched.
 */
export function blankTraceComments(query: string): BlankedQuery {
  if (!mentionsTrace(query)) return { text: query, comments: [] };
  let tokens: { start: number; end: number; tokenName: string }[];
  try {
    tokens = scanSync(query).tokens;
  } catch {
    // The scanner refuses it, and so will the target; nothing to take out.
    return { text: query, comments: [] };
  }
  const bytes = Buffer.from(query, 'utf8');
  const comments: TraceComment[] = [];
  let problem: string | undefined;
  for (const token of tokens) {
    if (token.tokenName !== 'C_COMMENT') continue;
    const body = bytes.toString('utf8', token.start + 2, token.end - 2);
    if (!body.includes(KEY_PREFIX)) continue;
    const pairs = readPairs(body);
    if (!pairs) {
      problem ??= `the comment ${JSON.stringify(truncate(body))} mentions tracegate but is not sqlcommenter pairs (key='url-encoded value', separated by commas)`;
      continue;
    }
    const ours = pairs.filter(([key]) => key.startsWith(KEY_PREFIX));
    if (ours.length === 0) continue;
    const attachment: { traceId?: string; inlineTrace?: string } = {};
    for (const [key, value] of ours) {
      if (key === TRACE_ID) attachment.traceId = value;
      else if (key === INLINE_TRACE) attachment.inlineTrace = value;
      else problem ??= `'${key}' is not a tracegate comment key; use ${TRACE_ID}='…' or ${INLINE_TRACE}='<url-encoded JSON>'`;
    }
    comments.push({ offset: token.start, attachment });
    const rest = pairs.filter(([key]) => !key.startsWith(KEY_PREFIX));
    const replacement = rest.length === 0 ? '' : `/*${rest.map(([k, v]) => `${k}='${encodeURIComponent(v)}'`).join(',')}*/`;
    const width = token.end - token.start;
    // Spaces keep every later offset where the parser will find it; a kept comment is never longer.
    const filled = Buffer.alloc(width, 0x20);
    const kept = Buffer.from(replacement, 'utf8');
    if (kept.length <= width) kept.copy(filled, 0);
    filled.copy(bytes, token.start);
  }
  return { text: bytes.toString('utf8'), comments, ...(problem ? { problem } : {}) };
}

/** `key='value',key2='value2'` with URL-encoded values; undefined when the body is not that shape. */
function readPairs(body: string): [string, string][] | undefined {
  const pairs: [string, string][] = [];
  const pattern = /\s*([A-Za-z0-9_.-]+)\s*=\s*'((?:[^'\\]|\\.)*)'\s*(,|$)/y;
  let at = 0;
  const trimmed = body.trim();
  while (at < trimmed.length) {
    pattern.lastIndex = at;
    const match = pattern.exec(trimmed);
    if (!match) return undefined;
    let value: string;
    try {
      value = decodeURIComponent(match[2]!.replace(/\\'/g, "'"));
    } catch {
      return undefined;
    }
    pairs.push([match[1]!, value]);
    at = pattern.lastIndex;
    if (match[3] === '') break;
  }
  return pairs.length > 0 ? pairs : undefined;
}

function truncate(text: string): string {
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

/**
 * `SET tracegate.trace_id = '…'` (or TO, SESSION, RESET) sets the session's default trace. The
 * gateway answers it itself and never forwards it: the target has no such setting and must not
 * see trace ids. Returns the new default ('' after RESET), or undefined when it is no such SET.
 */
export function sessionTraceSetting(statement: string): { readonly traceId: string } | undefined {
  const set = /^\s*SET\s+(?:SESSION\s+)?"?tracegate"?\s*\.\s*"?trace_id"?\s*(?:=|\bTO\b)\s*(?:'((?:[^']|'')*)'|(DEFAULT)|([A-Za-z0-9_.:-]+))\s*;?\s*$/i.exec(statement);
  if (set) return { traceId: set[2] ? '' : (set[1] ?? set[3] ?? '').replaceAll("''", "'") };
  if (/^\s*RESET\s+"?tracegate"?\s*\.\s*"?trace_id"?\s*;?\s*$/i.test(statement)) return { traceId: '' };
  return undefined;
}

/** Any other statement naming the tracegate settings (SET LOCAL, set_config, SHOW) is refused, never forwarded. */
export function namesTraceSetting(statement: string): boolean {
  return /tracegate"?\s*\.\s*"?trace_id/i.test(statement);
}
