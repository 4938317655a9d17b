import { GENESIS, headOf, sealEvent, TOPICS, type ChainHead, type CloudEvent, type LogRecord } from '@tracegate/events';

/**
 * Builds a session's events the way the gateway's EventSessionRecorder does: the same types, data
 * fields, source and hash chain. (Services never import each other, so tests build them here.)
 */
export class GatewaySessionScript {
  readonly events: CloudEvent[] = [];
  private head: ChainHead = GENESIS;
  private clock: number;

  constructor(
    readonly sessionId: string,
    start = Date.parse('2026-11-22T02:10:00.000Z'),
  ) {
    this.clock = start;
  }

  private seal(event: string, data: Record<string, unknown>): CloudEvent {
    this.clock += 5;
    const sealed = sealEvent({ type: `dev.tracegate.session.${event}.v1`, subject: this.sessionId, source: '/tracegate/gateway', data, time: new Date(this.clock) }, this.head);
    this.head = headOf(sealed);
    this.events.push(sealed);
    return sealed;
  }

  started(
    facts: { identityId?: string; identityName?: string; identityKind?: string; target?: string; applicationName?: string; clientAddress?: string; leaseId?: string; protocol?: 'postgres' | 'ssh' } = {},
  ): this {
    this.seal('started', {
      identityId: facts.identityId ?? 'key-ci',
      identityName: facts.identityName ?? 'ci-agent',
      identityKind: facts.identityKind ?? 'agent',
      identityGroups: ['readers'],
      target: facts.target ?? 'billing',
      clientAddress: facts.clientAddress ?? '127.0.0.1:51422',
      applicationName: facts.applicationName ?? 'psql',
      protocol: facts.protocol ?? 'postgres',
      credentialLeaseId: facts.leaseId ?? '019a9d7e-0000-7000-8000-000000000001',
    });
    return this;
  }

  /** statement_requested and statement_decided, as one append carries them. */
  requested(
    statementId: string,
    text: string,
    decision: { effect?: string; rule?: string; reason?: string; approvalRequestId?: string; approvalState?: string } = {},
    extra: { protocol?: 'simple' | 'extended' | 'function-call' | 'ssh-exec' | 'ssh-shell' | 'ssh-subsystem'; parameterCount?: number; inMultiStatement?: boolean; traceId?: string; parameters?: readonly (string | null)[] } = {},
  ): this {
    this.seal('statement_requested', {
      statementId,
      text,
      fingerprint: `fp-${text.length}`,
      protocol: extra.protocol ?? 'simple',
      inMultiStatement: extra.inMultiStatement ?? false,
      parameterCount: extra.parameterCount ?? 0,
      // As the proto3 JSON mapping writes it: a field at its default is left out.
      ...(extra.traceId ? { traceId: extra.traceId } : {}),
      ...(extra.parameters?.length ? { parameters: extra.parameters.map((text) => (text === null ? {} : { text })) } : {}),
    });
    this.seal('statement_decided', {
      statementId,
      effect: decision.effect ?? 'allow',
      rule: decision.rule ?? 'read-only',
      reason: decision.reason ?? '',
      policyVersion: 'builtin-1',
      maskingProfile: '',
      ...(decision.approvalRequestId ? { approvalRequestId: decision.approvalRequestId, approvalState: decision.approvalState ?? '' } : {}),
    });
    return this;
  }

  completed(
    statementId: string,
    outcome: { commandTag?: string; rows?: number; sqlstate?: string; errorMessage?: string; executed?: boolean; durationMs?: number; masked?: Record<string, number> } = {},
  ): this {
    this.seal('statement_completed', {
      statementId,
      commandTag: outcome.commandTag ?? '',
      rows: outcome.rows ?? 0,
      durationMs: outcome.durationMs ?? 3,
      sqlstate: outcome.sqlstate ?? '',
      errorMessage: outcome.errorMessage ?? '',
      executed: outcome.executed ?? true,
      ...(outcome.masked && Object.keys(outcome.masked).length > 0 ? { masked: outcome.masked } : {}),
    });
    return this;
  }

  /** A chunk of recorded (masked) result rows, as the gateway writes it between the request and the completion. */
  result(statementId: string, chunk: number, rows: readonly (readonly (string | null)[])[], columns: readonly string[] = []): this {
    this.seal('statement_result', {
      statementId,
      ...(chunk > 0 ? { chunk } : {}),
      ...(columns.length > 0 ? { columns } : {}),
      rows: rows.map((values) => ({ values: values.map((text) => (text === null ? {} : { text })) })),
    });
    return this;
  }

  ended(reason = 'client terminated'): this {
    this.seal('ended', { reason });
    return this;
  }

  /** Any other event on the session's chain, by its name: `statement_masked` -> dev.tracegate.session.statement_masked.v1. */
  other(type: string, data: Record<string, unknown>): this {
    this.seal(type, data);
    return this;
  }

  records(): LogRecord[] {
    return this.events.map((event) => ({ topic: TOPICS.sessions.name, key: this.sessionId, event }));
  }
}
