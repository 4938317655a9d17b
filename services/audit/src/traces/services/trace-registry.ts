import { randomUUID } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import { auditV1, timestampOf } from '@tracegate/contracts';
import { TOPICS } from '@tracegate/events';
import { SERVICE_CONTEXT, type ServiceContext } from '@tracegate/runtime';
import { AUDIT_CONFIG, type AuditConfig } from '../../audit.config.js';
import { AuditError, AuditErrorCode } from '../../errors.js';
import { AuditEventWriter } from '../../grants/repositories/audit-event-writer.js';
import { ReaderGrants, toProtoGrant } from '../../grants/services/reader-grants.js';
import type { ReadScope } from '../../grants/domain/reader-grant.js';
import { TRACE_REDACTOR, type TraceRedactor } from '../clients/trace-redactor.js';
import type { TraceCaller } from '../controllers/trace-callers.js';
import { featuresOf, freeTextOf, readSubmittedTrace, TRACE_ID, withFreeText } from '../domain/trace-document.js';
import type { TraceEntity } from '../entities/trace.entity.js';
import { TraceRepository } from '../repositories/trace.repository.js';

const SESSION_ID = /^[A-Za-z0-9._:-]{1,128}$/;
const NAME = /^[A-Za-z0-9][A-Za-z0-9_.@-]{0,62}$/;

/** The owner of a submitted trace: the agent's own identity, or the one the gateway names. */
interface TraceOwner {
  readonly id: string;
  readonly name: string;
  readonly sessionId: string;
  readonly target: string;
}

function unknownTrace(id: string): AuditError {
  return new AuditError(
    AuditErrorCode.NotFound,
    `no trace has id '${id.slice(0, 80)}'; submit the trace first (TraceService.Submit or \`tracegate traces submit --file trace.json\`) and attach the id it returns`,
  );
}

/**
 * Reasoning traces: taken in (checked, masked, stored and emitted), resolved for the gateway, and
 * read under a reader grant.
 */
@Injectable()
export class TraceRegistry {
  constructor(
    private readonly traces: TraceRepository,
    private readonly events: AuditEventWriter,
    private readonly grants: ReaderGrants,
    @Inject(TRACE_REDACTOR) private readonly redactor: TraceRedactor,
    @Inject(AUDIT_CONFIG) private readonly config: AuditConfig,
    @Inject(SERVICE_CONTEXT) private readonly context: ServiceContext,
  ) {}

  async submit(caller: TraceCaller, request: auditV1.SubmitRequest): Promise<auditV1.SubmitResponse> {
    const owner = ownerOf(caller, request);
    const { trace: submitted, sizeBytes } = readSubmittedTrace(request, this.config.traceMaxBytes);
    const masked = withFreeText(submitted, await this.mask(freeTextOf(submitted)));
    const now = new Date();
    const id = `t-${randomUUID()}`;
    const stored: auditV1.Trace = { ...masked, id, createdAt: timestampOf(now), identityId: owner.id, identityName: owner.name, sessionId: owner.sessionId, sizeBytes };
    const document = auditV1.Trace.toJSON(stored) as Record<string, unknown>;
    await this.traces.transaction(async (manager) => {
      // The event carries the masked trace only. The row is written first and the log acknowledges
      // the event before the transaction commits: a trace the log did not take is not stored.
      await this.events.write(
        manager,
        { topic: TOPICS.traces.name, type: 'dev.tracegate.trace.submitted.v1', subject: id, key: id, data: { trace: document, target: owner.target }, time: now },
        async (event) => {
          const row: TraceEntity = {
            id,
            identityId: owner.id,
            identityName: owner.name,
            agentName: stored.agent?.name || owner.name,
            model: stored.agent?.model ?? '',
            confidence: stored.confidence,
            tags: [...stored.tags],
            sessionId: owner.sessionId,
            sizeBytes,
            document,
            eventId: event.id,
            createdAt: now,
          };
          await this.traces.insert(manager, row);
          if (owner.sessionId !== '' && owner.target !== '') await this.traces.link({ traceId: id, sessionId: owner.sessionId, target: owner.target, at: now }, manager);
        },
      );
    });
    return { id, features: featuresOf(stored) };
  }

  async resolve(request: auditV1.ResolveTraceRequest): Promise<auditV1.ResolveTraceResponse> {
    if (request.identityId === '') throw AuditError.invalidArgument('identity_id', 'is required: the identity attaching the trace');
    if (!TRACE_ID.test(request.traceId)) throw unknownTrace(request.traceId);
    const trace = await this.traces.find(request.traceId);
    if (!trace) throw unknownTrace(request.traceId);
    if (trace.identityId !== request.identityId) {
      throw new AuditError(AuditErrorCode.PermissionDenied, `trace ${trace.id} was submitted by another identity; an agent can only attach its own traces`);
    }
    if ((request.sessionId === '') !== (request.target === '')) throw AuditError.invalidArgument('session_id and target', 'go together: set both to record where the trace is attached, or neither');
    if (request.sessionId !== '') {
      if (!SESSION_ID.test(request.sessionId) || !NAME.test(request.target)) throw AuditError.invalidArgument('session_id or target', 'is not a valid id or name');
      await this.traces.link({ traceId: trace.id, sessionId: request.sessionId, target: request.target, at: new Date() });
    }
    return { features: featuresOf({ confidence: trace.confidence, agent: { name: trace.agentName, model: trace.model, version: '' }, tags: trace.tags }), agentName: trace.agentName };
  }

  /** A trace for a reader identity that holds a grant covering it; the read is recorded first. */
  async read(reader: { readonly id: string; readonly name: string }, id: string): Promise<auditV1.GetTraceResponse> {
    if (!TRACE_ID.test(id)) throw unknownTrace(id);
    const trace = await this.traces.find(id);
    if (!trace) throw unknownTrace(id);
    const targets = await this.traces.targetsOf(id);
    const scope: ReadScope = { agent: trace.identityName, target: targets, at: trace.createdAt, what: `trace ${id}` };
    let grant;
    try {
      grant = await this.grants.authorize(reader.name, scope);
    } catch (error) {
      if (error instanceof AuditError && error.code === AuditErrorCode.PermissionDenied) {
        await this.grants.recordRefusal(reader, { kind: 'trace', id, scope }, error.message).catch((failure: unknown) => {
          this.context.logger.warn({ err: (failure as Error).message, trace: id, reader: reader.name }, 'a refused trace read could not be recorded');
        });
      }
      throw error;
    }
    await this.grants.recordRead(reader, { kind: 'trace', id, scope }, grant);
    return { trace: auditV1.Trace.fromJSON(trace.document), grant: toProtoGrant(grant), targets };
  }

  private async mask(texts: string[]): Promise<string[]> {
    try {
      return await this.redactor.redact(texts);
    } catch (error) {
      // Fail closed: an unmasked trace is never stored.
      this.context.logger.warn({ err: (error as Error).message }, 'traces could not be masked');
      throw new AuditError(AuditErrorCode.Unavailable, 'the trace could not be masked (the masking engine failed), so it was not stored; try again shortly', { cause: error });
    }
  }
}

function ownerOf(caller: TraceCaller, request: auditV1.SubmitRequest): TraceOwner {
  if (caller.kind === 'identity') {
    for (const [field, value] of [['identity_id', request.identityId], ['identity_name', request.identityName], ['session_id', request.sessionId], ['target', request.target]] as const) {
      if (value !== '') throw AuditError.invalidArgument(field, "is only for tracegate's gateway; an agent's trace belongs to the identity of its API key, so leave it empty");
    }
    return { id: caller.id, name: caller.name, sessionId: '', target: '' };
  }
  if (request.identityId === '' || request.identityName === '') {
    throw AuditError.invalidArgument('identity_id and identity_name', 'are required with the internal token: the identity the trace is submitted for');
  }
  if (!NAME.test(request.identityName)) throw AuditError.invalidArgument('identity_name', `'${request.identityName.slice(0, 80)}' is not an identity name`);
  if (request.sessionId !== '' && !SESSION_ID.test(request.sessionId)) throw AuditError.invalidArgument('session_id', 'is not a valid session id');
  if (request.target !== '' && !NAME.test(request.target)) throw AuditError.invalidArgument('target', `'${request.target.slice(0, 80)}' is not a target name`);
  return { id: request.identityId, name: request.identityName, sessionId: request.sessionId, target: request.target };
}
