import { canonicalJson, hashOf, verifyChain, type CloudEvent } from '@tracegate/events';
import { sessionEventOf, type StatementResult } from './session-events.js';
import { evolve, type SessionRecord, type StatementRecord } from './session-projection.js';

/** A session head a signed checkpoint vouches for: at `sequence` the chain's hash was `hash`. */
export interface CheckpointedHead {
  readonly checkpointId: string;
  readonly sequence: number;
  readonly hash: string;
  /** Problems with the checkpoint itself (a bad signature), already worded. */
  readonly problems: readonly string[];
}

export interface SessionEvidence {
  readonly sessionId: string;
  /** The session's events on the log, in log order; undefined where the log cannot be read by key (Kafka). */
  readonly log: readonly CloudEvent[] | undefined;
  /** The events as the projection received them, by sequence. */
  readonly copy: readonly CloudEvent[];
  readonly session: SessionRecord | undefined;
  readonly statements: readonly StatementRecord[];
  readonly checkpoints: readonly CheckpointedHead[];
  /** The recorded result rows as stored (audit.statement_results); omitted, none are compared. */
  readonly results?: readonly StoredResultChunk[];
}

/** A stored chunk of a statement's recorded result rows. */
export interface StoredResultChunk {
  readonly statementId: string;
  readonly chunk: number;
  readonly eventId: string;
  readonly rows: readonly (readonly (string | null)[])[];
}

export interface SessionVerdict {
  readonly intact: boolean;
  readonly eventsChecked: number;
  readonly problems: readonly string[];
}

/**
 * Pure: everything that disagrees between the log, the projection's copy of it, the projected rows
 * and the signed checkpoints, one sentence each naming the sequence (or statement) and the field.
 *
 * - The chain (from the log where it can be read, else from the copy): a changed event no longer
 *   matches its hash, a removed or inserted one breaks the sequence or the links.
 * - The log against the copy: an event rewritten on the log after it was projected (even with a
 *   recomputed chain) differs from what the projection received.
 * - The rows against the events: the rows are recomputed from the events the projection has
 *   applied and compared column by column, so an UPDATE of a stored row shows.
 * - Checkpoints: a signed head whose sequence now hashes differently means the history was
 *   rewritten after it was signed, chain and copy included.
 */
export function verifySessionEvidence(evidence: SessionEvidence): SessionVerdict {
  const problems: string[] = [];
  const source = evidence.log ?? evidence.copy;
  const sourceName = evidence.log ? 'the log' : "the projection's copy of the log";
  if (source.length === 0 && !evidence.session) return { intact: false, eventsChecked: 0, problems: [`no event of session ${evidence.sessionId} is on the log`] };
  if (source.length === 0) problems.push(`session ${evidence.sessionId} has a projected row but no event on ${sourceName}: the row was inserted, or the events removed`);
  problems.push(...verifyChain(source).map((p) => `${sourceName}: ${p}`));
  if (evidence.log) problems.push(...compareLogWithCopy(evidence.log, evidence.copy));

  // The rows reflect the events the projection applied: those in the copy.
  const projectedIds = new Set(evidence.copy.map((e) => e.id));
  const projectedSequences = new Set(evidence.copy.map((e) => e.sequence));
  const applied = source.filter((e) => projectedIds.has(e.id) || projectedSequences.has(e.sequence));
  problems.push(...compareRows(evidence, applied, sourceName));
  if (evidence.results) problems.push(...compareResults(evidence.results, applied, sourceName));

  const bySequence = new Map(source.map((e) => [e.sequence, e]));
  for (const head of evidence.checkpoints) {
    problems.push(...head.problems);
    if (!head.hash) {
      problems.push(`checkpoint ${head.checkpointId} is indexed under this session but signs no head for it: the checkpoint index was altered`);
      continue;
    }
    const event = bySequence.get(head.sequence);
    if (!event) {
      problems.push(`checkpoint ${head.checkpointId} signed sequence ${head.sequence} of this session, which is no longer on ${sourceName}: events were removed`);
    } else if (event.hash !== head.hash || hashOf(event) !== head.hash) {
      problems.push(
        `sequence ${head.sequence} (event ${event.id}) hashes to ${hashOf(event).slice(0, 12)}… but checkpoint ${head.checkpointId} signed ${head.hash.slice(0, 12)}…: the history was rewritten after it was checkpointed`,
      );
    }
  }
  return { intact: problems.length === 0, eventsChecked: source.length, problems };
}

function compareLogWithCopy(log: readonly CloudEvent[], copy: readonly CloudEvent[]): string[] {
  const problems: string[] = [];
  const copied = new Map(copy.map((e) => [e.id, e]));
  const logged = new Set(log.map((e) => e.id));
  for (const event of log) {
    const received = copied.get(event.id);
    if (!received) continue; // not projected yet
    for (const field of differingFields(received, event)) {
      problems.push(
        `sequence ${event.sequence} (event ${event.id}): ${field.path} is ${show(field.now)} on the log but was ${show(field.was)} when the projection received it: the log was rewritten`,
      );
    }
  }
  for (const event of copy) {
    if (!logged.has(event.id)) problems.push(`sequence ${event.sequence} (event ${event.id}, ${event.type}) was projected but is no longer on the log: it was removed`);
  }
  return problems;
}

function compareRows(evidence: SessionEvidence, events: readonly CloudEvent[], sourceName: string): string[] {
  const problems: string[] = [];
  let session: SessionRecord | undefined;
  const statements = new Map<string, StatementRecord>();
  for (const event of [...events].sort((a, b) => a.sequence - b.sequence)) {
    const known = sessionEventOf(event);
    if (!known) continue;
    const statementId = known.kind === 'started' || known.kind === 'ended' ? undefined : known.statementId;
    const after = evolve({ session, statement: statementId === undefined ? undefined : statements.get(statementId) }, known);
    session = after.session;
    if (after.statement && statementId !== undefined) statements.set(statementId, after.statement);
  }
  if (!session) return problems;
  if (!evidence.session) return [`session ${evidence.sessionId} has events on ${sourceName} but no projected row: the row was deleted`];
  for (const field of differingFields(evidence.session, session)) {
    problems.push(`session ${evidence.sessionId}: ${field.path} is ${show(field.was)} in the projection but ${show(field.now)} on ${sourceName}`);
  }
  const stored = new Map(evidence.statements.map((s) => [s.statementId, s]));
  for (const [statementId, expected] of statements) {
    const row = stored.get(statementId);
    if (!row) {
      problems.push(`statement ${expected.sequence} (id ${statementId}) is on ${sourceName} but has no projected row: the row was deleted`);
      continue;
    }
    for (const field of differingFields(row, expected)) {
      problems.push(`statement ${expected.sequence} (id ${statementId}): ${field.path} is ${show(field.was)} in the projection but ${show(field.now)} on ${sourceName}`);
    }
  }
  for (const row of evidence.statements) {
    if (!statements.has(row.statementId)) problems.push(`statement ${row.sequence} (id ${row.statementId}) is in the projection but on no event of ${sourceName}: the row was inserted`);
  }
  return problems;
}

/** The stored result chunks against the statement_result events: changed, deleted or inserted rows. */
function compareResults(stored: readonly StoredResultChunk[], events: readonly CloudEvent[], sourceName: string): string[] {
  const problems: string[] = [];
  const key = (statementId: string, chunk: number) => `${statementId}\u0000${chunk}`;
  const expected = new Map<string, StatementResult>();
  for (const event of events) {
    const known = sessionEventOf(event);
    if (known?.kind === 'statement_result') expected.set(key(known.statementId, known.chunk), known);
  }
  const byKey = new Map(stored.map((c) => [key(c.statementId, c.chunk), c]));
  for (const [k, event] of expected) {
    const chunk = byKey.get(k);
    const where = `result chunk ${event.chunk} of statement ${event.statementId} (event ${event.eventId})`;
    if (!chunk) {
      problems.push(`${where} is on ${sourceName} but has no projected rows: they were deleted`);
      continue;
    }
    for (const field of differingFields({ rows: chunk.rows }, { rows: event.rows })) {
      problems.push(`${where}: ${field.path} is ${show(field.was)} in the projection but ${show(field.now)} on ${sourceName}`);
    }
  }
  for (const [k, chunk] of byKey) {
    if (!expected.has(k)) problems.push(`result chunk ${chunk.chunk} of statement ${chunk.statementId} is in the projection but on no event of ${sourceName}: the rows were inserted`);
  }
  return problems;
}

interface FieldDifference {
  readonly path: string;
  /** The value in the first argument (the stored one). */
  readonly was: unknown;
  /** The value in the second (what the evidence says). */
  readonly now: unknown;
}

/** Leaf by leaf, with dates compared as instants: `data.text`, `effect`, `identityGroups`. */
export function differingFields(stored: unknown, expected: unknown, path = ''): FieldDifference[] {
  const a = normalise(stored);
  const b = normalise(expected);
  if (isPlainObject(a) && isPlainObject(b)) {
    const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
    return keys.flatMap((k) => differingFields(a[k], b[k], path ? `${path}.${k}` : k));
  }
  return canonicalJson(a ?? null) === canonicalJson(b ?? null) ? [] : [{ path: path || '(value)', was: a, now: b }];
}

function normalise(value: unknown): unknown {
  return value instanceof Date ? value.toISOString() : value;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function show(value: unknown): string {
  const text = value === undefined ? 'missing' : JSON.stringify(value);
  return text.length > 80 ? `${text.slice(0, 77)}…` : text;
}
