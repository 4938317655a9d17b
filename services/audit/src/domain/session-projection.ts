import type { SessionEvent, StatementEvent } from './session-events.js';

/** A session as the audit trail shows it: one row of `audit.sessions`. */
export interface SessionRecord {
  readonly id: string;
  readonly identityId: string;
  readonly identityName: string;
  readonly identityKind: string;
  readonly identityGroups: readonly string[];
  readonly target: string;
  readonly clientAddress: string;
  readonly applicationName: string;
  readonly protocol: string;
  readonly credentialLeaseId: string;
  readonly startedAt: Date;
  readonly endedAt: Date | null;
  readonly endReason: string;
  readonly statementCount: number;
  /** The chain sequence of the last event applied to this session. */
  readonly lastSequence: number;
}

/** One statement of a session, with its decision and completion: one row of `audit.statements`. */
export interface StatementRecord {
  readonly sessionId: string;
  readonly statementId: string;
  /** 1, 2, 3… in the order the session requested its statements. */
  readonly sequence: number;
  readonly text: string;
  readonly fingerprint: string;
  readonly protocol: string;
  readonly inMultiStatement: boolean;
  readonly parameterCount: number;
  /** The reasoning trace the agent attached, '' if none. */
  readonly traceId: string;
  readonly effect: string;
  readonly rule: string;
  readonly reason: string;
  readonly policyVersion: string;
  readonly maskingProfile: string;
  /** The approval request a reviewed statement was held for, and how it ended (approved, denied, expired, withdrawn). */
  readonly approvalRequestId: string;
  readonly approvalState: string;
  readonly commandTag: string;
  readonly rows: number;
  readonly durationMs: number;
  readonly sqlstate: string;
  readonly errorMessage: string;
  readonly executed: boolean;
  readonly requestedAt: Date;
  readonly decidedAt: Date | null;
  readonly completedAt: Date | null;
  /** The bind parameter values after masking (null for SQL NULL); empty when none were recorded. */
  readonly parameters: readonly (string | null)[];
  /** How often each masking rule or detector fired on the result, by name. */
  readonly masked: Readonly<Record<string, number>>;
  /** The result's column names (from its first result chunk). */
  readonly resultColumns: readonly string[];
  /** How many result rows the gateway recorded (the rows themselves are in `audit.statement_results`). */
  readonly rowsRecorded: number;
}

/**
 * The rows one event touches: its session and, for a statement event, that statement. The
 * repository loads them, {@link evolve} computes their next state, the repository writes it —
 * so the projection never loads a whole session to apply one event.
 */
export interface SessionSlice {
  readonly session: SessionRecord | undefined;
  readonly statement: StatementRecord | undefined;
}

export const EMPTY_SLICE: SessionSlice = { session: undefined, statement: undefined };

/**
 * Pure: the session (and statement) after `event`. Total, so a log that is missing an event never
 * stops the projection: an event for a session or statement not seen yet starts it with what the
 * event knows, and the rest stays empty. (Finding such gaps is the chain verifier's job.)
 */
export function evolve(slice: SessionSlice, event: SessionEvent): SessionSlice {
  const session = applyToSession(slice.session ?? blankSession(event), event);
  if (event.kind === 'started' || event.kind === 'ended') return { session, statement: undefined };
  const known = slice.statement;
  const statement = applyToStatement(known ?? blankStatement(event, session.statementCount + 1), event);
  return { session: known ? session : { ...session, statementCount: session.statementCount + 1 }, statement };
}

function applyToSession(session: SessionRecord, event: SessionEvent): SessionRecord {
  const lastSequence = Math.max(session.lastSequence, event.sequence);
  switch (event.kind) {
    case 'started':
      return {
        ...session,
        identityId: event.identityId,
        identityName: event.identityName,
        identityKind: event.identityKind,
        identityGroups: [...event.identityGroups],
        target: event.target,
        clientAddress: event.clientAddress,
        applicationName: event.applicationName,
        protocol: event.protocol,
        credentialLeaseId: event.credentialLeaseId,
        startedAt: event.time,
        lastSequence,
      };
    case 'ended':
      return { ...session, endedAt: event.time, endReason: event.reason, lastSequence };
    case 'statement_requested':
    case 'statement_decided':
    case 'statement_completed':
    case 'statement_result':
      return { ...session, lastSequence };
  }
}

function applyToStatement(statement: StatementRecord, event: StatementEvent): StatementRecord {
  switch (event.kind) {
    case 'statement_requested':
      return {
        ...statement,
        text: event.text,
        fingerprint: event.fingerprint,
        protocol: event.protocol,
        inMultiStatement: event.inMultiStatement,
        parameterCount: event.parameterCount,
        traceId: event.traceId,
        parameters: [...event.parameters],
        requestedAt: event.time,
      };
    case 'statement_decided':
      return {
        ...statement,
        effect: event.effect,
        rule: event.rule,
        reason: event.reason,
        policyVersion: event.policyVersion,
        maskingProfile: event.maskingProfile,
        approvalRequestId: event.approvalRequestId,
        approvalState: event.approvalState,
        decidedAt: event.time,
      };
    case 'statement_completed':
      return {
        ...statement,
        commandTag: event.commandTag,
        rows: event.rows,
        durationMs: event.durationMs,
        sqlstate: event.sqlstate,
        errorMessage: event.errorMessage,
        executed: event.executed,
        masked: { ...event.masked },
        completedAt: event.time,
      };
    case 'statement_result':
      // Each chunk is applied once (its event id is the claim), so counting is exact; the rows
      // themselves go to audit.statement_results, beside the statement.
      return {
        ...statement,
        resultColumns: event.columns.length > 0 ? [...event.columns] : statement.resultColumns,
        rowsRecorded: statement.rowsRecorded + event.rows.length,
      };
  }
}

function blankSession(event: SessionEvent): SessionRecord {
  return {
    id: event.sessionId,
    identityId: '',
    identityName: '',
    identityKind: '',
    identityGroups: [],
    target: '',
    clientAddress: '',
    applicationName: '',
    protocol: '',
    credentialLeaseId: '',
    startedAt: event.time,
    endedAt: null,
    endReason: '',
    statementCount: 0,
    lastSequence: 0,
  };
}

function blankStatement(event: StatementEvent, sequence: number): StatementRecord {
  return {
    sessionId: event.sessionId,
    statementId: event.statementId,
    sequence,
    text: '',
    fingerprint: '',
    protocol: '',
    inMultiStatement: false,
    parameterCount: 0,
    traceId: '',
    effect: '',
    rule: '',
    reason: '',
    policyVersion: '',
    maskingProfile: '',
    approvalRequestId: '',
    approvalState: '',
    commandTag: '',
    rows: 0,
    durationMs: 0,
    sqlstate: '',
    errorMessage: '',
    executed: false,
    requestedAt: event.time,
    decidedAt: null,
    completedAt: null,
    parameters: [],
    masked: {},
    resultColumns: [],
    rowsRecorded: 0,
  };
}
