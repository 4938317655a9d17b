import { Inject, Injectable } from '@nestjs/common';
import type { DataSource, EntityManager } from 'typeorm';
import type { CloudEvent } from '@tracegate/events';
import { sessionEventOf, type SessionEvent, type StatementResult } from '../domain/session-events.js';
import { evolve, type SessionRecord, type StatementRecord } from '../domain/session-projection.js';
import { AUDIT_DATA_SOURCE, AUDIT_SCHEMA } from './audit-database.js';

export type ApplyOutcome = 'applied' | 'duplicate';
export type ProjectOutcome = ApplyOutcome | 'skipped';

/** One event of `tracegate.sessions.v1` and where the log holds it. */
export interface LoggedEvent {
  readonly event: CloudEvent;
  readonly position: string;
}

export interface BatchOutcome {
  readonly applied: number;
  readonly duplicate: number;
  readonly skipped: number;
  /** Types the projection does not know, with the id of one event of each (for the log). */
  readonly unknownTypes: ReadonlyMap<string, string>;
  /** Sessions whose rows this batch changed, with their last applied sequence and its hash. */
  readonly heads: ReadonlyMap<string, { readonly sequence: number; readonly hash: string }>;
  /** The newest event time applied, for the projection-age metric. */
  readonly newest: Date | undefined;
}

const SESSION_COLUMNS = `id, identity_id, identity_name, identity_kind, identity_groups, target, client_address, application_name, protocol,
  credential_lease_id, started_at, ended_at, end_reason, statement_count, last_sequence`;
const STATEMENT_COLUMNS = `session_id, statement_id, sequence, text, fingerprint, protocol, in_multi_statement, parameter_count, effect, rule, reason,
  policy_version, masking_profile, command_tag, rows, duration_ms, sqlstate, error_message, executed, requested_at, decided_at, completed_at,
  trace_id, approval_request_id, approval_state, parameters, masked, result_columns, rows_recorded`;

/**
 * Writes the session projection, a batch of consecutive events per transaction: the events are
 * copied to `audit.session_events` (keyed by event id) in the same transaction as their effect, so a redelivered event (after
 * a crash, a restart or a rebalance) finds its id and has no second effect, whether it comes
 * alone or inside another batch. A batch costs a fixed number of statements, whatever its size:
 * claim the ids, copy the events, load the rows they touch, evolve them in memory, write them back.
 */
@Injectable()
export class SessionProjectionRepository {
  /** The schema written: `audit`, or the fresh schema a rebuild fills before the switch. */
  private schema = AUDIT_SCHEMA;

  constructor(@Inject(AUDIT_DATA_SOURCE) private readonly db: DataSource) {}

  /** The same projection written into another schema (holding tables of the same shape). */
  inSchema(schema: string): SessionProjectionRepository {
    const other = new SessionProjectionRepository(this.db);
    other.schema = schema;
    return other;
  }

  applyBatch(batch: readonly LoggedEvent[]): Promise<BatchOutcome> {
    return this.db.transaction(async (manager) => {
      // One statement copies the events not applied before; the copy's primary key (the event id)
      // is the claim. The batch travels as one JSON document (cheaper to send and parse than an
      // array parameter).
      // A concurrent delivery of the same events (a group rebalancing) blocks on the uncommitted
      // ids, then sees them as claimed.
      const claimed: { event_id: string }[] = await manager.query(
        `INSERT INTO ${this.schema}.session_events (event_id, session_id, sequence, type, time, hash, position, event)
         SELECT e->>'id', e->>'subject', (e->>'sequence')::bigint, e->>'type', (e->>'time')::timestamptz, e->>'hash', b->>'p', e
           FROM jsonb_array_elements($1::jsonb) AS b, LATERAL (SELECT b->'e' AS e) AS x
         ON CONFLICT (event_id) DO NOTHING RETURNING event_id`,
        [JSON.stringify(batch.map((b) => ({ e: b.event, p: b.position })))],
      );
      const fresh = new Set(claimed.map((row) => row.event_id));
      const taken = new Set<string>();
      const mine = batch.filter((b) => fresh.has(b.event.id) && !taken.has(b.event.id) && taken.add(b.event.id));
      const unknownTypes = new Map<string, string>();
      const events: SessionEvent[] = [];
      for (const { event } of mine) {
        const sessionEvent = sessionEventOf(event);
        if (sessionEvent) events.push(sessionEvent);
        else if (!unknownTypes.has(event.type)) unknownTypes.set(event.type, event.id);
      }
      const heads = new Map<string, { sequence: number; hash: string }>();
      for (const { event } of mine) {
        const head = heads.get(event.subject);
        if (!head || event.sequence > head.sequence) heads.set(event.subject, { sequence: event.sequence, hash: event.hash });
      }
      let newest: Date | undefined;
      if (events.length > 0) {
        const { sessions, statements } = await this.load(manager, events);
        const changedSessions = new Set<string>();
        const changedStatements = new Set<string>();
        for (const event of events) {
          const statementKey = event.kind === 'started' || event.kind === 'ended' ? undefined : `${event.sessionId}\u0000${event.statementId}`;
          const after = evolve({ session: sessions.get(event.sessionId), statement: statementKey ? statements.get(statementKey) : undefined }, event);
          if (after.session) {
            sessions.set(event.sessionId, after.session);
            changedSessions.add(event.sessionId);
          }
          if (after.statement && statementKey) {
            statements.set(statementKey, after.statement);
            changedStatements.add(statementKey);
          }
          if (!newest || event.time > newest) newest = event.time;
        }
        await this.writeSessions(manager, [...changedSessions].map((id) => sessions.get(id)!));
        await this.writeStatements(manager, [...changedStatements].map((key) => statements.get(key)!));
        await this.writeResults(manager, events.filter((e): e is StatementResult => e.kind === 'statement_result'));
      }
      return {
        applied: events.length,
        duplicate: batch.length - mine.length,
        skipped: mine.length - events.length,
        unknownTypes,
        heads,
        newest,
      };
    });
  }

  /** Applies one event; the batch of one. */
  async apply(event: CloudEvent, position = ''): Promise<ProjectOutcome> {
    const outcome = await this.applyBatch([{ event, position }]);
    return outcome.applied ? 'applied' : outcome.duplicate ? 'duplicate' : 'skipped';
  }

  /** The generation of this schema's projection: a fresh one after the schema was dropped. */
  async generation(): Promise<string> {
    const rows: { generation: string }[] = await this.db.query(`SELECT generation::text AS generation FROM audit.projection WHERE name = 'sessions'`);
    const generation = rows[0]?.generation;
    if (!generation) throw new Error('audit.projection has no row for the sessions projection; the initial migration did not run completely');
    return generation;
  }

  private async load(manager: EntityManager, events: readonly SessionEvent[]): Promise<{ sessions: Map<string, SessionRecord>; statements: Map<string, StatementRecord> }> {
    const sessionIds = [...new Set(events.map((e) => e.sessionId))].sort();
    // Locked (in a stable order, so two batches never wait on each other in a cycle): two
    // deliveries touching one session (a consumer group rebalancing) apply one after the other.
    const sessionRows: Record<string, unknown>[] = await manager.query(
      `SELECT ${SESSION_COLUMNS} FROM ${this.schema}.sessions WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE`,
      [sessionIds],
    );
    const pairs = new Map<string, [string, string]>();
    for (const e of events) if (e.kind !== 'started' && e.kind !== 'ended') pairs.set(`${e.sessionId}\u0000${e.statementId}`, [e.sessionId, e.statementId]);
    const statementRows: Record<string, unknown>[] =
      pairs.size === 0
        ? []
        : await manager.query(
            `SELECT ${STATEMENT_COLUMNS.replace(/(\w+)/g, 's.$1')} FROM ${this.schema}.statements s
               JOIN unnest($1::text[], $2::text[]) AS k(session_id, statement_id) USING (session_id, statement_id)`,
            [[...pairs.values()].map((p) => p[0]), [...pairs.values()].map((p) => p[1])],
          );
    const sessions = new Map(sessionRows.map((row) => [row.id as string, sessionOfRow(row)]));
    const statements = new Map(statementRows.map((row) => [`${row.session_id as string}\u0000${row.statement_id as string}`, statementOfRow(row)]));
    return { sessions, statements };
  }

  private async writeSessions(manager: EntityManager, sessions: readonly SessionRecord[]): Promise<void> {
    if (sessions.length === 0) return;
    await manager.query(
      `INSERT INTO ${this.schema}.sessions (${SESSION_COLUMNS})
       SELECT id, identity_id, identity_name, identity_kind, identity_groups, target, client_address, application_name, protocol,
              credential_lease_id, started_at, ended_at, end_reason, statement_count, last_sequence
         FROM jsonb_to_recordset($1::jsonb) AS r(id text, identity_id text, identity_name text, identity_kind text, identity_groups text[],
              target text, client_address text, application_name text, protocol text, credential_lease_id text, started_at timestamptz,
              ended_at timestamptz, end_reason text, statement_count integer, last_sequence bigint)
       ON CONFLICT (id) DO UPDATE SET ${excludedAll(SESSION_COLUMNS, ['id'])}`,
      [
        JSON.stringify(
          sessions.map((s) => ({
            id: s.id,
            identity_id: s.identityId,
            identity_name: s.identityName,
            identity_kind: s.identityKind,
            identity_groups: s.identityGroups,
            target: s.target,
            client_address: s.clientAddress,
            application_name: s.applicationName,
            protocol: s.protocol,
            credential_lease_id: s.credentialLeaseId,
            started_at: s.startedAt,
            ended_at: s.endedAt,
            end_reason: s.endReason,
            statement_count: s.statementCount,
            last_sequence: s.lastSequence,
          })),
        ),
      ],
    );
  }

  private async writeStatements(manager: EntityManager, statements: readonly StatementRecord[]): Promise<void> {
    if (statements.length === 0) return;
    await manager.query(
      `INSERT INTO ${this.schema}.statements (${STATEMENT_COLUMNS})
       SELECT ${STATEMENT_COLUMNS}
         FROM jsonb_to_recordset($1::jsonb) AS r(session_id text, statement_id text, sequence integer, text text, fingerprint text, protocol text,
              in_multi_statement boolean, parameter_count integer, effect text, rule text, reason text, policy_version text, masking_profile text,
              command_tag text, rows bigint, duration_ms bigint, sqlstate text, error_message text, executed boolean, requested_at timestamptz,
              decided_at timestamptz, completed_at timestamptz, trace_id text, approval_request_id text, approval_state text, parameters jsonb,
              masked jsonb, result_columns text[], rows_recorded integer)
       ON CONFLICT (session_id, statement_id) DO UPDATE SET ${excludedAll(STATEMENT_COLUMNS, ['session_id', 'statement_id'])}`,
      [
        JSON.stringify(
          statements.map((s) => ({
            session_id: s.sessionId,
            statement_id: s.statementId,
            sequence: s.sequence,
            text: s.text,
            fingerprint: s.fingerprint,
            protocol: s.protocol,
            in_multi_statement: s.inMultiStatement,
            parameter_count: s.parameterCount,
            effect: s.effect,
            rule: s.rule,
            reason: s.reason,
            policy_version: s.policyVersion,
            masking_profile: s.maskingProfile,
            command_tag: s.commandTag,
            rows: s.rows,
            duration_ms: s.durationMs,
            sqlstate: s.sqlstate,
            error_message: s.errorMessage,
            executed: s.executed,
            requested_at: s.requestedAt,
            decided_at: s.decidedAt,
            completed_at: s.completedAt,
            trace_id: s.traceId,
            approval_request_id: s.approvalRequestId,
            approval_state: s.approvalState,
            parameters: s.parameters,
            masked: s.masked,
            result_columns: s.resultColumns,
            rows_recorded: s.rowsRecorded,
          })),
        ),
      ],
    );
  }

  /**
   * The recorded result rows, a row per chunk. Only events this batch claimed get here, so a
   * redelivered chunk adds nothing; the key is a second guard.
   */
  private async writeResults(manager: EntityManager, results: readonly StatementResult[]): Promise<void> {
    if (results.length === 0) return;
    await manager.query(
      `INSERT INTO ${this.schema}.statement_results (session_id, statement_id, chunk, event_id, rows)
       SELECT session_id, statement_id, chunk, event_id, rows
         FROM jsonb_to_recordset($1::jsonb) AS r(session_id text, statement_id text, chunk integer, event_id text, rows jsonb)
       ON CONFLICT (session_id, statement_id, chunk) DO NOTHING`,
      [JSON.stringify(results.map((r) => ({ session_id: r.sessionId, statement_id: r.statementId, chunk: r.chunk, event_id: r.eventId, rows: r.rows })))],
    );
  }
}

function excludedAll(columns: string, key: readonly string[]): string {
  return columns
    .split(',')
    .map((c) => c.trim())
    .filter((c) => !key.includes(c))
    .map((c) => `${c} = EXCLUDED.${c}`)
    .join(', ');
}

const dateOrNull = (value: unknown): Date | null => (value === null || value === undefined ? null : new Date(value as string | Date));

/** A row of audit.sessions as raw SQL returns it (bigint as text). */
export function sessionOfRow(row: Record<string, unknown>): SessionRecord {
  return {
    id: row.id as string,
    identityId: row.identity_id as string,
    identityName: row.identity_name as string,
    identityKind: row.identity_kind as string,
    identityGroups: (row.identity_groups as string[] | null) ?? [],
    target: row.target as string,
    clientAddress: row.client_address as string,
    applicationName: row.application_name as string,
    protocol: row.protocol as string,
    credentialLeaseId: row.credential_lease_id as string,
    startedAt: new Date(row.started_at as string | Date),
    endedAt: dateOrNull(row.ended_at),
    endReason: row.end_reason as string,
    statementCount: Number(row.statement_count),
    lastSequence: Number(row.last_sequence),
  };
}

/** A row of audit.statements as raw SQL returns it (bigint as text). */
export function statementOfRow(row: Record<string, unknown>): StatementRecord {
  return {
    sessionId: row.session_id as string,
    statementId: row.statement_id as string,
    sequence: Number(row.sequence),
    text: row.text as string,
    fingerprint: row.fingerprint as string,
    protocol: row.protocol as string,
    inMultiStatement: row.in_multi_statement as boolean,
    parameterCount: Number(row.parameter_count),
    effect: row.effect as string,
    rule: row.rule as string,
    reason: row.reason as string,
    policyVersion: row.policy_version as string,
    maskingProfile: row.masking_profile as string,
    commandTag: row.command_tag as string,
    rows: Number(row.rows),
    durationMs: Number(row.duration_ms),
    sqlstate: row.sqlstate as string,
    errorMessage: row.error_message as string,
    executed: row.executed as boolean,
    requestedAt: new Date(row.requested_at as string | Date),
    decidedAt: dateOrNull(row.decided_at),
    completedAt: dateOrNull(row.completed_at),
    traceId: (row.trace_id as string | undefined) ?? '',
    approvalRequestId: (row.approval_request_id as string | undefined) ?? '',
    approvalState: (row.approval_state as string | undefined) ?? '',
    parameters: (row.parameters as (string | null)[] | undefined) ?? [],
    masked: (row.masked as Record<string, number> | undefined) ?? {},
    resultColumns: (row.result_columns as string[] | undefined) ?? [],
    rowsRecorded: Number(row.rows_recorded ?? 0),
  };
}
