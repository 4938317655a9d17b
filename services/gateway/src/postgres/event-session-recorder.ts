import { GENESIS, headOf, sealEvent, TOPICS, type ChainHead, type EventLog, type LogRecord } from '@tracegate/events';
import { gatewayV1 } from '@tracegate/contracts';
import type { Logger } from '@tracegate/runtime';
import type { SessionFacts, SessionRecorder, StatementCompletion, StatementContext, StatementDecision } from './ports.js';

const SOURCE = '/tracegate/gateway';

/**
 * Writes a session's events to the log, each linked into the session's hash chain. Events are
 * sealed in the order the session produces them, and the log keeps that order per key.
 */
export class EventSessionRecorder implements SessionRecorder {
  private readonly heads = new Map<string, ChainHead>();
  /**
   * Completion events waiting to ride along with the session's next append. Completions need no
   * acknowledgement before anything happens, so instead of a write of their own (which the next
   * statement's durable write would queue behind) they join that write, or go out on a short
   * timer when the session goes quiet.
   */
  private readonly unsent = new Map<string, LogRecord[]>();
  private readonly timers = new Map<string, NodeJS.Timeout>();

  /**
   * `strict` (the default): a statement's request and decision are acknowledged by the log before
   * it runs, and a statement the log cannot take is not run. `async`: they are written in the
   * background and the statement runs at once; a write that fails is logged and counted, and the
   * audit trail may then miss it. For deployments that choose latency over that guarantee.
   */
  constructor(
    private readonly log: EventLog,
    private readonly logger: Logger,
    private readonly durability: 'strict' | 'async' = 'strict',
    private readonly completionDelayMs = 20,
  ) {}

  /** Writes that failed in async durability: each is a statement the audit trail misses. */
  unrecordedWrites = 0;

  private withUnsent(sessionId: string, records: LogRecord[]): LogRecord[] {
    const pending = this.unsent.get(sessionId);
    if (!pending) return records;
    this.unsent.delete(sessionId);
    clearTimeout(this.timers.get(sessionId));
    this.timers.delete(sessionId);
    return [...pending, ...records];
  }

  private flushLater(sessionId: string): void {
    if (this.timers.has(sessionId)) return;
    const timer = setTimeout(() => {
      this.timers.delete(sessionId);
      const records = this.withUnsent(sessionId, []);
      if (records.length === 0) return;
      this.log.append(records).catch((error: unknown) =>
        this.logger.error({ session: sessionId, err: (error as Error).message }, 'statement completions could not be recorded'),
      );
    }, this.completionDelayMs);
    timer.unref();
    this.timers.set(sessionId, timer);
  }

  /** `data` is the proto3 JSON form of the event's payload message (proto/tracegate/gateway/v1). */
  private seal(sessionId: string, event: string, data: unknown) {
    const sealed = sealEvent({ type: `dev.tracegate.session.${event}.v1`, subject: sessionId, source: SOURCE, data }, this.heads.get(sessionId) ?? GENESIS);
    this.heads.set(sessionId, headOf(sealed));
    return { topic: TOPICS.sessions.name, key: sessionId, event: sealed };
  }

  async sessionStarted(facts: SessionFacts): Promise<void> {
    await this.log.append([
      this.seal(facts.sessionId, 'started', gatewayV1.SessionStarted.toJSON({
        identityId: facts.identity.id,
        identityName: facts.identity.name,
        identityKind: facts.identity.kind,
        identityGroups: [...facts.identity.groups],
        target: facts.target,
        clientAddress: facts.clientAddress,
        applicationName: facts.applicationName,
        protocol: facts.protocol ?? 'postgres',
        credentialLeaseId: facts.leaseId,
      })),
    ]);
  }

  async statementRequested(sessionId: string, statementId: string, statement: StatementContext, decision: StatementDecision, parameterCount: number): Promise<void> {
    // One append, so the request and its decision are acknowledged together before the statement runs.
    const written = this.log.append(this.withUnsent(sessionId, [
      this.seal(sessionId, 'statement_requested', gatewayV1.StatementRequested.toJSON({
        statementId,
        // Text and parameter values arrive here masked (ClientSession.record).
        text: statement.text,
        fingerprint: statement.fingerprint,
        protocol: statement.protocol,
        inMultiStatement: statement.inMultiStatement,
        parameterCount,
        traceId: statement.traceId ?? '',
        parameters: (statement.parameters ?? []).map((text) => (text === null ? {} : { text })),
      })),
      this.seal(sessionId, 'statement_decided', gatewayV1.StatementDecided.toJSON({
        statementId,
        effect: decision.effect,
        rule: decision.rule,
        reason: decision.reason,
        policyVersion: decision.policyVersion,
        maskingProfile: decision.maskingProfile,
        approvalRequestId: decision.approval?.requestId ?? '',
        approvalState: decision.approval?.state ?? '',
      })),
    ]));
    if (this.durability === 'strict') {
      await written;
      return;
    }
    written.catch((error: unknown) => {
      this.unrecordedWrites += 1;
      this.logger.error({ session: sessionId, statementId, err: (error as Error).message }, 'a statement ran without its request being recorded (async durability)');
    });
  }

  statementCompleted(sessionId: string, statementId: string, completion: StatementCompletion): void {
    // Sealed now, so the chain keeps the order things happened in; written with the next append.
    const record = this.seal(sessionId, 'statement_completed', gatewayV1.StatementCompleted.toJSON({ statementId, ...completion, durationMs: Math.round(completion.durationMs), masked: completion.masked ?? {} }));
    this.later(sessionId, record);
  }

  /** Queues a record to ride along with the session's next append (or a short timer). */
  private later(sessionId: string, record: LogRecord): void {
    const pending = this.unsent.get(sessionId);
    if (pending) pending.push(record);
    else this.unsent.set(sessionId, [record]);
    this.flushLater(sessionId);
  }

  statementResult(sessionId: string, statementId: string, chunk: number, columns: readonly string[], rows: readonly (readonly (string | null)[])[]): void {
    const record = this.seal(sessionId, 'statement_result', gatewayV1.StatementResult.toJSON({
      statementId,
      chunk,
      columns: [...columns],
      rows: rows.map((values) => ({ values: values.map((text) => (text === null ? {} : { text })) })),
    }));
    this.later(sessionId, record);
  }

  async sessionEnded(sessionId: string, reason: string): Promise<void> {
    try {
      await this.log.append(this.withUnsent(sessionId, [this.seal(sessionId, 'ended', gatewayV1.SessionEnded.toJSON({ reason }))]));
    } finally {
      this.heads.delete(sessionId);
    }
  }
}
