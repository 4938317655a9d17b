import { parseArgs } from 'node:util';
import { status as GrpcStatus, type ServiceError } from '@grpc/grpc-js';
import { auditV1, SERVICE_PROTOS } from '@tracegate/contracts';
import { grpcClient, INTERNAL_TOKEN_METADATA, type PromiseClient } from '@tracegate/runtime';
import { ProgressLine } from '../progress.js';
import { CommandError, internalToken, isoOf, runCommand, table, UsageError } from './broker-connection.js';
import { apiKeyMetadata, traceConnection } from './trace-connection.js';

export const SESSIONS_USAGE = `usage:
  tracegate sessions list [--target T] [--identity NAME] [--limit N] [--json]
      recorded sessions, newest first (at most 100 unless --limit says otherwise, up to 1000)
  tracegate sessions show <id> [--json]
      a session's facts, then every statement in order: its decision, its text and how it ended;
      under a statement, its masked parameters, how often masking fired on its result, and the
      first 5 recorded (masked) result rows with how many were recorded (--json has them all)
  tracegate sessions replay <id> [--real-time|--instant] [--json]
      plays the session's statements in order with their timing (--real-time keeps the recorded
      pauses, each at most 10 s; --instant, the default, does not); --json prints one JSON object
      per statement per line
  tracegate sessions verify <id> [--json]
      checks the session's hash chain and sequence on the event log, the projected rows against the
      events and the signed checkpoints; exits 1 and names each problem if anything was changed

The audit service is at TRACEGATE_AUDIT_ADDRESS (default 127.0.0.1:7106); the internal token comes
from TRACEGATE_INTERNAL_TOKEN or <TRACEGATE_HOME or ./.tracegate>/internal-token. With TRACEGATE_API_KEY
set (and TRACEGATE_IDENTITY, its name, optionally) list, show and replay read as that identity
instead: only sessions its reader grants cover (\`tracegate grants create\`), each read recorded.
`;

export interface AuditConnection {
  readonly address: string;
  readonly client: PromiseClient<auditV1.AuditServiceClient>;
}

/** TRACEGATE_AUDIT_ADDRESS, default 127.0.0.1:<TRACEGATE_AUDIT_GRPC_PORT or 7106>; the token as the broker commands find it. */
export function auditConnection(environment: Record<string, string | undefined>, asIdentity = false): AuditConnection {
  const address = environment.TRACEGATE_AUDIT_ADDRESS?.trim() || `127.0.0.1:${environment.TRACEGATE_AUDIT_GRPC_PORT?.trim() || '7106'}`;
  const client = grpcClient<auditV1.AuditServiceClient>(SERVICE_PROTOS.audit.files[0], 'tracegate.audit.v1.AuditService', address, {
    metadata: asIdentity && environment.TRACEGATE_API_KEY?.trim() ? apiKeyMetadata(environment) : { [INTERNAL_TOKEN_METADATA]: internalToken(environment) },
    deadlineMs: 15_000,
  });
  return { address, client };
}

/** Calls the audit service and turns a gRPC failure into a sentence for the terminal. */
async function callAudit<T>(connection: AuditConnection, call: (client: AuditConnection['client']) => Promise<T>): Promise<T> {
  try {
    return await call(connection.client);
  } catch (error) {
    throw auditFailure(connection, error);
  } finally {
    connection.client.close();
  }
}

export function auditFailure(connection: AuditConnection, error: unknown): unknown {
  {
    const grpc = error as Partial<ServiceError>;
    if (typeof grpc.code !== 'number') return error;
    if (grpc.code === GrpcStatus.UNAVAILABLE || grpc.code === GrpcStatus.DEADLINE_EXCEEDED) {
      return new CommandError(
        `cannot reach the audit service at ${connection.address} (${grpc.details || 'unavailable'}); is tracegate running? Set TRACEGATE_AUDIT_ADDRESS if it runs elsewhere`,
      );
    }
    return new CommandError(grpc.details || `the audit service answered ${GrpcStatus[grpc.code] ?? grpc.code}`);
  }
}

export function sessionsCommand(argv: readonly string[], environment: Record<string, string | undefined> = process.env): Promise<number> {
  return runCommand(SESSIONS_USAGE, async () => {
    const [sub, ...rest] = argv;
    switch (sub) {
      case 'list':
        return list(rest, environment);
      case 'show':
        return show(rest, environment);
      case 'replay':
        return replay(rest, environment);
      case 'verify':
        return verify(rest, environment);
      case undefined:
      case 'help':
      case '--help':
        process.stdout.write(SESSIONS_USAGE);
        return sub === undefined ? 2 : 0;
      default:
        throw new UsageError(`unknown sessions command '${sub}'`);
    }
  });
}

async function list(args: readonly string[], environment: Record<string, string | undefined>): Promise<number> {
  const { values } = parseArgs({
    args: [...args],
    strict: true,
    options: {
      target: { type: 'string', default: '' },
      identity: { type: 'string', default: '' },
      limit: { type: 'string' },
      json: { type: 'boolean', default: false },
    },
  });
  const limit = values.limit === undefined ? 0 : Number(values.limit);
  if (values.limit !== undefined && (!Number.isInteger(limit) || limit < 1 || limit > 1000)) throw new UsageError(`--limit '${values.limit}' is not a whole number from 1 to 1000`);
  const connection = auditConnection(environment, true);
  const { sessions } = await callAudit(connection, (audit) => audit.listSessions({ target: values.target!, identityId: '', identityName: values.identity!, limit }));
  if (values.json) {
    process.stdout.write(`${JSON.stringify(auditV1.ListSessionsResponse.toJSON({ sessions: sessions.map(sessionForJson) }), null, 2)}\n`);
    return 0;
  }
  if (sessions.length === 0) {
    const filtered = values.target || values.identity ? ' matching these filters' : '';
    process.stdout.write(`no sessions recorded${filtered}; sessions appear here once a client connects through the gateway\n`);
    return 0;
  }
  const rows = sessions.map((s) => [s.id, s.identityName || s.identityId, s.target, isoOf(s.startedAt ?? undefined), s.endedAt ? isoOf(s.endedAt) : 'open', String(s.statementCount)]);
  process.stdout.write(table(['ID', 'IDENTITY', 'TARGET', 'STARTED', 'ENDED', 'STATEMENTS'], rows));
  return 0;
}

async function show(args: readonly string[], environment: Record<string, string | undefined>): Promise<number> {
  const { values, positionals } = parseArgs({ args: [...args], allowPositionals: true, strict: true, options: { json: { type: 'boolean', default: false } } });
  if (positionals.length !== 1) throw new UsageError(`expected one session id, got ${positionals.length === 0 ? 'none' : positionals.join(' ')}`);
  const id = positionals[0]!;
  const connection = auditConnection(environment, true);
  const { session, statements } = await callAudit(connection, (audit) => audit.getSession({ id }));
  if (!session) throw new CommandError(`the audit service returned no session for '${id}'`);
  if (values.json) {
    const response = { session: sessionForJson(session), statements: statements.map(statementForJson) };
    process.stdout.write(`${JSON.stringify(auditV1.GetSessionResponse.toJSON(response), null, 2)}\n`);
    return 0;
  }
  const identity = [session.identityKind, session.identityId && session.identityId !== session.identityName ? `key ${session.identityId}` : ''].filter(Boolean).join(', ');
  const facts: [string, string][] = [
    ['session', session.id],
    ['identity', `${session.identityName || session.identityId || '(unknown)'}${identity ? ` (${identity})` : ''}`],
    ['target', `${session.target}${session.protocol ? ` (${session.protocol})` : ''}`],
    ['client', `${session.clientAddress}${session.applicationName ? ` (${session.applicationName})` : ''}`],
    ['lease', session.credentialLeaseId || '-'],
    ['started', isoOf(session.startedAt ?? undefined)],
    ['ended', session.endedAt ? `${isoOf(session.endedAt)}${session.endReason ? ` (${session.endReason})` : ''}` : 'open'],
    ['statements', String(session.statementCount)],
  ];
  const width = Math.max(...facts.map(([k]) => k.length));
  process.stdout.write(facts.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join('\n') + '\n');
  if (statements.length > 0) {
    process.stdout.write('\n');
    process.stdout.write(table(['SEQ', 'DECISION', 'OUTCOME', 'STATEMENT'], statements.map((s) => [String(s.sequence), decisionOf(s), outcomeOf(s), statementLine(s)])));
    // Its reasoning trace, parameters, masking hits and the first recorded rows, under each statement that has any.
    const traces = new TraceLookup(environment);
    try {
      for (const s of statements) {
        const details = [...(s.traceId ? [await traces.line(s.traceId)] : []), ...detailLines(s, SHOW_ROWS)];
        if (details.length > 0) process.stdout.write(`\n#${s.sequence}  ${statementLine(s)}\n${details.map((l) => `  ${l}`).join('\n')}\n`);
      }
    } finally {
      traces.close();
    }
  }
  return 0;
}

async function replay(args: readonly string[], environment: Record<string, string | undefined>): Promise<number> {
  const { values, positionals } = parseArgs({
    args: [...args],
    allowPositionals: true,
    strict: true,
    options: { json: { type: 'boolean', default: false }, 'real-time': { type: 'boolean', default: false }, instant: { type: 'boolean', default: false } },
  });
  if (positionals.length !== 1) throw new UsageError(`expected one session id, got ${positionals.length === 0 ? 'none' : positionals.join(' ')}`);
  if (values['real-time'] && values.instant) throw new UsageError('--real-time and --instant contradict each other; give one');
  const id = positionals[0]!;
  const connection = auditConnection(environment, true);
  const progress = new ProgressLine('statements', undefined);
  const traces = new TraceLookup(environment);
  try {
    // Only a terminal shows progress; asking for the total is one more (recorded) read.
    if (progress.enabled) progress.setTotal((await connection.client.getSession({ id })).session?.statementCount);
    const stream = connection.client.stream<auditV1.ReplaySessionResponse>('replaySession', { id, realTime: values['real-time'] === true });
    let played = 0;
    let first: number | undefined;
    for await (const response of stream as AsyncIterable<auditV1.ReplaySessionResponse>) {
      const statement = response.statement;
      if (!statement) continue;
      played += 1;
      progress.clear();
      if (values.json) {
        process.stdout.write(`${JSON.stringify(auditV1.Statement.toJSON(statementForJson(statement)))}\n`);
      } else {
        const at = millisOf(statement.at ?? undefined);
        first ??= at;
        const details = [...(statement.traceId ? [await traces.line(statement.traceId)] : []), ...detailLines(statement, SHOW_ROWS)];
        process.stdout.write(`${replayLine(statement, at !== undefined && first !== undefined ? at - first : undefined)}\n${details.map((l) => `${' '.repeat(14)}${l}\n`).join('')}`);
      }
      progress.update(played);
    }
    progress.finish();
    if (played === 0 && !values.json) process.stdout.write(`session ${id} has no statements\n`);
    return 0;
  } catch (error) {
    progress.finish();
    throw auditFailure(connection, error);
  } finally {
    connection.client.close();
    traces.close();
  }
}

/**
 * The reasoning trace beside a statement, in one line. Reading a trace needs a reader grant, so
 * it is fetched as TRACEGATE_API_KEY's identity (each read is recorded by the audit service); an
 * administrator's internal token cannot read traces, and then the line says how to see it.
 */
class TraceLookup {
  private readonly lines = new Map<string, Promise<string>>();
  private client: PromiseClient<auditV1.TraceServiceClient> | undefined;

  constructor(private readonly environment: Record<string, string | undefined>) {}

  line(traceId: string): Promise<string> {
    let line = this.lines.get(traceId);
    if (!line) {
      line = this.read(traceId);
      this.lines.set(traceId, line);
    }
    return line;
  }

  private async read(traceId: string): Promise<string> {
    if (!this.environment.TRACEGATE_API_KEY?.trim()) return `trace ${traceId} (to see it, set TRACEGATE_API_KEY to a reader's key with a grant: tracegate grants create)`;
    this.client ??= traceConnection<auditV1.TraceServiceClient>('TraceService', 'api-key', this.environment).client;
    try {
      const { trace } = await this.client.getTrace({ id: traceId });
      if (!trace) return `trace ${traceId}: (empty)`;
      const who = [trace.agent?.name, trace.agent?.model].filter(Boolean).join(', ');
      const steps = trace.steps.length > 0 ? `, ${trace.steps.length} step${trace.steps.length === 1 ? '' : 's'}` : '';
      const prompt = oneLine(trace.prompt);
      return `trace ${traceId}: ${who || 'agent'} (confidence ${trace.confidence.toFixed(2)}${steps}) ${prompt.length > 120 ? `${prompt.slice(0, 117)}...` : prompt}`;
    } catch (error) {
      return `trace ${traceId} (not readable: ${(error as { details?: string }).details || (error as Error).message})`;
    }
  }

  close(): void {
    this.client?.close();
  }
}

/** `+1.250s  #3  deny (no-deletes)  error 42501: …  DELETE FROM invoices  [trace t-1]` */
export function replayLine(s: auditV1.Statement, offsetMs: number | undefined): string {
  const offset = offsetMs === undefined ? '' : `+${(offsetMs / 1000).toFixed(3)}s`;
  const trace = s.traceId ? `  [trace ${s.traceId}]` : '';
  const reason = s.effect === 'deny' && s.reason ? ` — ${oneLine(s.reason)}` : '';
  const by = (s.approvedBy ?? []).length > 0 ? ` by ${s.approvedBy.join(', ')}` : s.approvalDecidedBy ? ` by ${s.approvalDecidedBy}` : '';
  const approval = s.approvalRequestId ? `, review ${s.approvalRequestId} ${s.approvalState || 'pending'}${by}` : '';
  return `${offset.padStart(10)}  #${s.sequence}  ${decisionOf(s)}${approval}${reason}  ${outcomeOf(s)}  ${statementLine(s)}${trace}`;
}

/** How many recorded result rows `show` and `replay` print per statement; --json has them all. */
export const SHOW_ROWS = 5;

/**
 * What a statement carried besides its text: its masked bind parameters, how often masking fired
 * on its result, and the first `maxRows` recorded (masked) result rows with how many were recorded
 * of how many the target returned. Empty when there is none of that.
 */
export function detailLines(s: auditV1.Statement, maxRows: number): string[] {
  const lines: string[] = [];
  const parameters = s.parameters ?? [];
  if (parameters.length > 0) lines.push(`parameters: ${parameters.map((p, i) => `$${i + 1} = ${sqlValue(p.text)}`).join(', ')}`);
  const masked = Object.entries(s.masked ?? {}).sort(([a], [b]) => a.localeCompare(b));
  if (masked.length > 0) lines.push(`masked: ${masked.map(([name, count]) => `${name} ×${count}`).join(', ')}`);
  const rows = s.resultRows ?? [];
  if (s.rowsRecorded === 0 && rows.length === 0) {
    // Nothing recorded: no result table, no output lines.
  } else if (isSshOutput(s)) {
    lines.push(...outputLines(s, maxRows));
  } else {
    const shown = rows.slice(0, maxRows).map((row) => row.values.map((v) => (v.text === undefined || v.text === null ? 'NULL' : oneLine(v.text))));
    const width = Math.max(s.resultColumns.length, ...shown.map((r) => r.length));
    const header = Array.from({ length: width }, (_, i) => s.resultColumns[i] ?? `column${i + 1}`);
    lines.push(...table(header, shown.map((r) => Array.from({ length: width }, (_, i) => r[i] ?? ''))).trimEnd().split('\n'));
    const more = s.rowsRecorded - shown.length;
    lines.push(`(${s.rowsRecorded} of ${s.completed ? s.rowCount : '?'} rows recorded${more > 0 ? `; ${more} more not shown here, --json has them` : ''})`);
  }
  return lines;
}

/** A parameter as SQL would spell it: NULL, or the (masked) text quoted. */
function sqlValue(text: string | null | undefined): string {
  return text === undefined || text === null ? 'NULL' : `'${oneLine(text).replaceAll("'", "''")}'`;
}

function millisOf(t: { seconds: number; nanos: number } | undefined): number | undefined {
  return t ? t.seconds * 1000 + Math.floor(t.nanos / 1e6) : undefined;
}

async function verify(args: readonly string[], environment: Record<string, string | undefined>): Promise<number> {
  const { values, positionals } = parseArgs({ args: [...args], allowPositionals: true, strict: true, options: { json: { type: 'boolean', default: false } } });
  if (positionals.length !== 1) throw new UsageError(`expected one session id, got ${positionals.length === 0 ? 'none' : positionals.join(' ')}`);
  const id = positionals[0]!;
  const connection = auditConnection(environment);
  const verdict = await callAudit(connection, (audit) => audit.verifySession({ id }));
  if (values.json) {
    process.stdout.write(`${JSON.stringify({ id, ...auditV1.VerifySessionResponse.toJSON(verdict) as object, intact: verdict.intact }, null, 2)}\n`);
  } else if (verdict.intact) {
    process.stdout.write(`session ${id} is intact: ${verdict.eventsChecked} events checked (hash chain, sequence, projected rows, signed checkpoints)\n`);
  } else {
    const n = verdict.problems.length;
    process.stdout.write(`session ${id} FAILED verification: ${n} problem${n === 1 ? '' : 's'} in ${verdict.eventsChecked} events\n${verdict.problems.map((p) => `  - ${p}`).join('\n')}\n`);
  }
  return verdict.intact ? 0 : 1;
}

/** `allow (read-only)`, `deny (no-deletes)`; `undecided` if no decision was recorded. */
export function decisionOf(s: auditV1.Statement): string {
  if (!s.effect) return 'undecided';
  return s.rule ? `${s.effect} (${s.rule})` : s.effect;
}

/**
 * How a statement ended: its command tag and rows, or its error, or that it did not run. An SSH
 * command's tag is its exit status (`exit 0`, `signal TERM`) and its rows are output lines.
 */
export function outcomeOf(s: auditV1.Statement): string {
  if (!s.completed) return 'no outcome yet';
  if (isSsh(s)) return sshOutcomeOf(s);
  if (!s.executed) return 'not run';
  if (s.sqlstate || s.error) return `error ${s.sqlstate}${s.error ? `: ${oneLine(s.error)}` : ''}`.trim();
  const rows = `${s.rowCount} row${s.rowCount === 1 ? '' : 's'}`;
  return s.commandTag ? `${s.commandTag} (${rows})` : rows;
}

/**
 * `exit 0 (3 lines)`, `signal TERM (0 lines)`, `refused` (the gateway did not run it: the
 * decision says why), `stopped (12 lines) — <why the gateway cut the output>`.
 */
function sshOutcomeOf(s: auditV1.Statement): string {
  if (!s.executed) return s.commandTag || 'not run';
  const lines = `${s.rowCount} line${s.rowCount === 1 ? '' : 's'}`;
  return `${s.commandTag || 'ended'} (${lines})${s.error ? ` — ${oneLine(s.error)}` : ''}`;
}

/** Whether the gateway's SSH side recorded it: a command (ssh-exec), a line typed in a shell (ssh-shell) or a subsystem (ssh-subsystem). */
function isSsh(s: auditV1.Statement): boolean {
  return s.protocol.startsWith('ssh-');
}

/** The statement as its author typed it: SQL as is, an SSH command or shell line after a prompt, a subsystem by name. */
export function statementLine(s: auditV1.Statement): string {
  const text = oneLine(s.maskedText);
  if (s.protocol === 'ssh-subsystem') return `subsystem ${text}`;
  if (s.protocol === 'ssh-shell' && !text) return 'interactive shell';
  return isSsh(s) ? `$ ${text}` : text;
}

/** SSH output is recorded as rows of (stream, text): one masked line each (docs/events.md). */
function isSshOutput(s: auditV1.Statement): boolean {
  return isSsh(s) && s.resultColumns.length === 2 && s.resultColumns[0] === 'stream' && s.resultColumns[1] === 'text';
}

/** The first `maxRows` recorded output lines as a terminal showed them, stderr marked, and how many were recorded. */
function outputLines(s: auditV1.Statement, maxRows: number): string[] {
  const recorded = s.resultRows ?? [];
  const shown = recorded.slice(0, maxRows).map(({ values: [stream, text] }) => {
    const line = printable((text?.text ?? '').replace(/\r?\n$/, ''));
    return stream?.text === 'stderr' ? `stderr: ${line}` : line;
  });
  const more = s.rowsRecorded - shown.length;
  const total = s.completed ? String(s.rowCount) : '?';
  return [...shown, `(${s.rowsRecorded} of ${total} output line${s.rowCount === 1 && s.completed ? '' : 's'} recorded${more > 0 ? `; ${more} more not shown here, --json has them` : ''})`];
}

/** Statements keep their own line breaks in the record; one table row shows them as spaces. */
function oneLine(text: string): string {
  return printable(text.replace(/\s+/g, ' ').trim());
}

/**
 * Recorded text with its control characters spelled out (`\x1b`), tabs kept: what a target printed
 * or a client typed must not move the reader's cursor, recolour or retitle their terminal.
 */
function printable(text: string): string {
  return text.replace(/[\x00-\x08\x0a-\x1f\x7f-\x9f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

// The gRPC loader gives unset message fields as null; ts-proto's JSON methods expect undefined.
export function sessionForJson(s: auditV1.Session): auditV1.Session {
  return { ...s, startedAt: s.startedAt ?? undefined, endedAt: s.endedAt ?? undefined };
}

export function statementForJson(s: auditV1.Statement): auditV1.Statement {
  return { ...s, at: s.at ?? undefined, completedAt: s.completedAt ?? undefined };
}
