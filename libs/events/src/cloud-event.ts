import { createHash } from 'node:crypto';
import { v7 as uuidv7 } from 'uuid';

/**
 * A tracegate event as it travels on the log: a CloudEvents 1.0 envelope in JSON structured mode,
 * so SIEM tools can read the topics without knowing anything of tracegate.
 *
 * Extension attributes (lower-case, as CloudEvents requires):
 * - `sequence`: 1, 2, 3… per aggregate (the subject), with no gaps;
 * - `prevhash`: the `hash` of the aggregate's previous event, or 64 zeros for the first;
 * - `hash`: SHA-256 over `prevhash` and the canonical JSON of every other attribute and the data.
 * Together they make one aggregate's history a hash chain: changing, dropping or reordering an
 * event breaks every hash after it.
 */
export interface CloudEvent<TData = unknown> {
  readonly specversion: '1.0';
  readonly id: string;
  readonly source: string;
  readonly type: string;
  readonly subject: string;
  readonly time: string;
  readonly datacontenttype: 'application/json';
  readonly sequence: number;
  readonly prevhash: string;
  readonly hash: string;
  readonly data: TData;
}

/** What a producer says; the envelope fields that make the chain are added by {@link sealEvent}. */
export interface EventDraft<TData = unknown> {
  /** `dev.tracegate.<aggregate>.<event>.v1` */
  readonly type: string;
  /** The aggregate id: a session id, an approval request id… */
  readonly subject: string;
  /** Which component wrote it, as a URI reference: `/tracegate/gateway`. */
  readonly source: string;
  readonly data: TData;
  /** Defaults to now; given in tests and replays. */
  readonly time?: Date;
  /** Defaults to a fresh UUIDv7 (time-ordered, so ids sort roughly by creation). */
  readonly id?: string;
}

/** Where an aggregate's chain stands: what the next event links to. */
export interface ChainHead {
  readonly sequence: number;
  readonly hash: string;
}

export const GENESIS_HASH = '0'.repeat(64);
export const GENESIS: ChainHead = { sequence: 0, hash: GENESIS_HASH };

const EVENT_TYPE = /^dev\.tracegate\.[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*\.v[0-9]+$/;

export function isEventType(type: string): boolean {
  return EVENT_TYPE.test(type);
}

/** `dev.tracegate.session.started.v1` -> `session` */
export function aggregateOf(type: string): string {
  return type.split('.')[2] ?? '';
}

/**
 * JSON with object keys sorted at every depth, so the same event always hashes the same
 * whichever process serialised it.
 */
export function canonicalJson(value: unknown): string {
  // Hash what the log will carry: JSON.stringify turns a Date (or anything with toJSON) into its
  // JSON form, so a consumer re-hashing the event it read must see the same text.
  if (value !== null && typeof value === 'object' && typeof (value as { toJSON?: unknown }).toJSON === 'function') {
    return canonicalJson((value as { toJSON(): unknown }).toJSON());
  }
  if (value === null || typeof value !== 'object') {
    if (typeof value === 'number' && !Number.isFinite(value)) {
      throw new TypeError('event data must not contain NaN or Infinity: JSON cannot carry them');
    }
    return JSON.stringify(value) ?? 'null';
  }
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    // Like JSON.stringify, leave out properties JSON cannot carry.
    .filter(([, v]) => v !== undefined && typeof v !== 'function' && typeof v !== 'symbol')
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
}

export function hashOf(event: Omit<CloudEvent, 'hash'>): string {
  const { prevhash, ...rest } = event as Omit<CloudEvent, 'hash'> & { hash?: string };
  delete (rest as { hash?: string }).hash;
  return createHash('sha256').update(prevhash).update('\n').update(canonicalJson(rest)).digest('hex');
}

/** Pure: the next event of an aggregate, linked to `head`. */
export function sealEvent<TData>(draft: EventDraft<TData>, head: ChainHead): CloudEvent<TData> {
  if (!isEventType(draft.type)) {
    throw new TypeError(`event type '${draft.type}' is not of the form dev.tracegate.<aggregate>.<event>.v<N>`);
  }
  if (!draft.subject) throw new TypeError(`event ${draft.type} has no subject (aggregate id)`);
  const unsealed = {
    specversion: '1.0' as const,
    id: draft.id ?? uuidv7(),
    source: draft.source,
    type: draft.type,
    subject: draft.subject,
    time: (draft.time ?? new Date()).toISOString(),
    datacontenttype: 'application/json' as const,
    sequence: head.sequence + 1,
    prevhash: head.hash,
    data: draft.data,
  };
  return { ...unsealed, hash: hashOf(unsealed) };
}

export function headOf(event: CloudEvent): ChainHead {
  return { sequence: event.sequence, hash: event.hash };
}

/**
 * Checks one aggregate's events, in log order, and names every break: an altered event
 * (its hash no longer matches its content), a gap or repeat in the sequence, or a link to
 * the wrong predecessor (an event removed or inserted).
 */
export function verifyChain(events: readonly CloudEvent[], start: ChainHead = GENESIS): string[] {
  const problems: string[] = [];
  let head = start;
  for (const event of events) {
    if (event.sequence !== head.sequence + 1) {
      problems.push(
        `event ${event.id} of ${event.subject} has sequence ${event.sequence} where ${head.sequence + 1} was expected: an event is missing, repeated or out of order`,
      );
    }
    if (event.prevhash !== head.hash) {
      problems.push(
        `event ${event.id} (sequence ${event.sequence}) links to ${event.prevhash.slice(0, 12)}… but the event before it hashes to ${head.hash.slice(0, 12)}…: the history before it was changed`,
      );
    }
    const recomputed = hashOf(event);
    if (recomputed !== event.hash) {
      problems.push(`event ${event.id} (sequence ${event.sequence}) was altered: its content no longer matches its hash`);
    }
    head = { sequence: event.sequence, hash: event.hash };
  }
  return problems;
}

/** Validates an envelope read back from the log or from a SIEM's copy of it. */
export function cloudEventProblems(value: unknown): string[] {
  const problems: string[] = [];
  if (value === null || typeof value !== 'object') return ['a CloudEvent must be a JSON object'];
  const e = value as Record<string, unknown>;
  const str = (k: string) => {
    if (typeof e[k] !== 'string' || e[k] === '') problems.push(`attribute '${k}' must be a non-empty string`);
  };
  if (e.specversion !== '1.0') problems.push(`specversion must be '1.0', got ${JSON.stringify(e.specversion)}`);
  for (const k of ['id', 'source', 'type', 'subject', 'time', 'prevhash', 'hash']) str(k);
  if (typeof e.type === 'string' && !isEventType(e.type)) problems.push(`type '${e.type}' is not dev.tracegate.<aggregate>.<event>.v<N>`);
  if (typeof e.time === 'string' && Number.isNaN(Date.parse(e.time))) problems.push(`time '${e.time}' is not an RFC 3339 timestamp`);
  if (e.datacontenttype !== 'application/json') problems.push(`datacontenttype must be application/json`);
  if (!Number.isSafeInteger(e.sequence) || (e.sequence as number) < 1) problems.push('sequence must be a positive integer');
  for (const k of Object.keys(e)) {
    if (!/^[a-z0-9]{1,20}$/.test(k)) problems.push(`attribute name '${k}' is not a valid CloudEvents attribute name`);
  }
  return problems;
}
