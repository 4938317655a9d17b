import type { CloudEvent } from '@tracegate/events';

/**
 * The session events the gateway writes to `tracegate.sessions.v1` (docs/events.md), as the
 * projection reads them. Every event carries its envelope facts: the session (subject), the
 * event id, its sequence in the session's chain and its time.
 */
interface Envelope {
  readonly eventId: string;
  readonly sessionId: string;
  readonly sequence: number;
  readonly time: Date;
}

export interface SessionStarted extends Envelope {
  readonly kind: 'started';
  readonly identityId: string;
  readonly identityName: string;
  readonly identityKind: string;
  readonly identityGroups: readonly string[];
  readonly target: string;
  readonly clientAddress: string;
  readonly applicationName: string;
  readonly protocol: string;
  readonly credentialLeaseId: string;
}

export interface StatementRequested extends Envelope {
  readonly kind: 'statement_requested';
  readonly statementId: string;
  readonly text: string;
  readonly fingerprint: string;
  readonly protocol: string;
  readonly inMultiStatement: boolean;
  readonly parameterCount: number;
  /** The reasoning trace the agent attached, '' if none. */
  readonly traceId: string;
  /** The bind parameter values after masking (null for SQL NULL); empty when no masking profile applied. */
  readonly parameters: readonly (string | null)[];
}

export interface StatementDecided extends Envelope {
  readonly kind: 'statement_decided';
  readonly statementId: string;
  readonly effect: string;
  readonly rule: string;
  readonly reason: string;
  readonly policyVersion: string;
  readonly maskingProfile: string;
  /** For a reviewed statement: the approval request it was held for, and how that ended. */
  readonly approvalRequestId: string;
  readonly approvalState: string;
}

export interface StatementCompleted extends Envelope {
  readonly kind: 'statement_completed';
  readonly statementId: string;
  readonly commandTag: string;
  readonly rows: number;
  readonly durationMs: number;
  readonly sqlstate: string;
  readonly errorMessage: string;
  readonly executed: boolean;
  /** How often each masking rule or detector fired on the result, by name. */
  readonly masked: Readonly<Record<string, number>>;
}

/** A chunk of a statement's result rows as the client received them (masked); null for SQL NULL. */
export interface StatementResult extends Envelope {
  readonly kind: 'statement_result';
  readonly statementId: string;
  /** 0, 1, 2… per statement. */
  readonly chunk: number;
  /** The column names, in chunk 0 only. */
  readonly columns: readonly string[];
  readonly rows: readonly (readonly (string | null)[])[];
}

export interface SessionEnded extends Envelope {
  readonly kind: 'ended';
  readonly reason: string;
}

export type SessionEvent = SessionStarted | StatementRequested | StatementDecided | StatementCompleted | StatementResult | SessionEnded;
export type StatementEvent = StatementRequested | StatementDecided | StatementCompleted | StatementResult;

export const SESSION_EVENT_TYPES = {
  started: 'dev.tracegate.session.started.v1',
  statement_requested: 'dev.tracegate.session.statement_requested.v1',
  statement_decided: 'dev.tracegate.session.statement_decided.v1',
  statement_completed: 'dev.tracegate.session.statement_completed.v1',
  statement_result: 'dev.tracegate.session.statement_result.v1',
  ended: 'dev.tracegate.session.ended.v1',
} as const satisfies Record<SessionEvent['kind'], string>;

const KIND_OF_TYPE = new Map<string, SessionEvent['kind']>(Object.entries(SESSION_EVENT_TYPES).map(([kind, type]) => [type, kind as SessionEvent['kind']]));

/**
 * Reads a log event as a session event, or `undefined` for a type the projection does not know
 * (a newer producer's event: skipped, not fatal). Missing or mistyped data fields read as their
 * defaults ('' / 0 / false / []), as in the proto3 JSON mapping the payloads follow.
 */
export function sessionEventOf(event: CloudEvent): SessionEvent | undefined {
  const kind = KIND_OF_TYPE.get(event.type);
  if (!kind) return undefined;
  const data = (event.data !== null && typeof event.data === 'object' ? event.data : {}) as Record<string, unknown>;
  const str = (key: string) => (typeof data[key] === 'string' ? data[key] : '');
  const num = (key: string) => (typeof data[key] === 'number' && Number.isFinite(data[key]) ? Math.max(0, Math.round(data[key])) : 0);
  const bool = (key: string) => data[key] === true;
  const strings = (key: string) => (Array.isArray(data[key]) ? data[key].filter((v): v is string => typeof v === 'string') : []);
  const time = new Date(event.time);
  const envelope: Envelope = { eventId: event.id, sessionId: event.subject, sequence: event.sequence, time: Number.isNaN(time.getTime()) ? new Date(0) : time };
  switch (kind) {
    case 'started':
      return {
        ...envelope,
        kind,
        identityId: str('identityId'),
        identityName: str('identityName'),
        identityKind: str('identityKind'),
        identityGroups: Array.isArray(data.identityGroups) ? data.identityGroups.filter((g): g is string => typeof g === 'string') : [],
        target: str('target'),
        clientAddress: str('clientAddress'),
        applicationName: str('applicationName'),
        protocol: str('protocol'),
        credentialLeaseId: str('credentialLeaseId'),
      };
    case 'statement_requested':
      return {
        ...envelope,
        kind,
        statementId: str('statementId'),
        text: str('text'),
        fingerprint: str('fingerprint'),
        protocol: str('protocol'),
        inMultiStatement: bool('inMultiStatement'),
        parameterCount: num('parameterCount'),
        traceId: str('traceId'),
        parameters: nullableTexts(data.parameters),
      };
    case 'statement_decided':
      return {
        ...envelope,
        kind,
        statementId: str('statementId'),
        effect: str('effect'),
        rule: str('rule'),
        reason: str('reason'),
        policyVersion: str('policyVersion'),
        maskingProfile: str('maskingProfile'),
        approvalRequestId: str('approvalRequestId'),
        approvalState: str('approvalState'),
      };
    case 'statement_completed':
      return {
        ...envelope,
        kind,
        statementId: str('statementId'),
        commandTag: str('commandTag'),
        rows: num('rows'),
        durationMs: num('durationMs'),
        sqlstate: str('sqlstate'),
        errorMessage: str('errorMessage'),
        executed: bool('executed'),
        masked: countsOf(data.masked),
      };
    case 'statement_result':
      return {
        ...envelope,
        kind,
        statementId: str('statementId'),
        chunk: num('chunk'),
        columns: strings('columns'),
        rows: Array.isArray(data.rows) ? data.rows.map((row: unknown) => nullableTexts(isRecord(row) ? row.values : undefined)) : [],
      };
    case 'ended':
      return { ...envelope, kind, reason: str('reason') };
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** `repeated NullableText` in the proto3 JSON mapping: `{"text": "…"}`, or `{}` for SQL NULL. */
function nullableTexts(value: unknown): (string | null)[] {
  if (!Array.isArray(value)) return [];
  return value.map((v: unknown) => (isRecord(v) && typeof v.text === 'string' ? v.text : null));
}

/** `map<string, uint32>` in the proto3 JSON mapping; anything not a count is left out. */
function countsOf(value: unknown): Record<string, number> {
  if (!isRecord(value)) return {};
  const counts: Record<string, number> = {};
  for (const [name, count] of Object.entries(value).sort(([a], [b]) => a.localeCompare(b))) {
    if (typeof count === 'number' && Number.isFinite(count) && count >= 0) counts[name] = Math.round(count);
  }
  return counts;
}
