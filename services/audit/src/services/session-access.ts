import { Inject, Injectable } from '@nestjs/common';
import type { Metadata } from '@grpc/grpc-js';
import { SERVICE_CONTEXT, type ServiceContext } from '@tracegate/runtime';
import type { ReadScope } from '../grants/domain/reader-grant.js';
import { ReaderGrants } from '../grants/services/reader-grants.js';
import { AuditError, AuditErrorCode } from '../errors.js';
import type { SessionRecord } from '../domain/session-projection.js';
import { TraceCallers } from '../traces/controllers/trace-callers.js';

/** Who reads sessions: tracegate itself (internal token), or an identity with its API key. */
export type SessionCaller = { readonly kind: 'internal' } | { readonly kind: 'identity'; readonly id: string; readonly name: string };

/**
 * Reader grants applied to sessions. The internal token (the CLI of an operator, tracegate's own
 * services) reads everything; an identity with an API key reads a session only under an
 * unexpired reader grant for the session's identity (agent) or its target whose window covers the
 * session's start. Every read by an identity, and every refusal, is recorded on tracegate.audit.v1
 * before the answer (dev.tracegate.auditaccess.read.v1 / .refused.v1).
 */
@Injectable()
export class SessionAccess {
  constructor(
    private readonly callers: TraceCallers,
    private readonly grants: ReaderGrants,
    @Inject(SERVICE_CONTEXT) private readonly context: ServiceContext,
  ) {}

  async reader(metadata: Metadata | undefined): Promise<SessionCaller> {
    const caller = await this.callers.identify(metadata);
    return caller.kind === 'internal' ? caller : { kind: 'identity', id: caller.id, name: caller.name };
  }

  /** For RPCs that change or check the whole trail (VerifySession, RebuildProjection). */
  requireInternal(metadata: Metadata | undefined, rpc: string): void {
    this.callers.requireInternal(metadata, rpc);
  }

  /** Allows the read (and records it) or refuses it (and records that) with PERMISSION_DENIED. */
  async admit(reader: SessionCaller, session: SessionRecord): Promise<void> {
    if (reader.kind === 'internal') return;
    const scope: ReadScope = { agent: session.identityName, target: session.target, at: session.startedAt, what: `session ${session.id}` };
    const read = { kind: 'session', id: session.id, scope };
    let grant;
    try {
      grant = await this.grants.authorize(reader.name, scope);
    } catch (error) {
      if (error instanceof AuditError && error.code === AuditErrorCode.PermissionDenied) {
        await this.grants.recordRefusal(reader, read, error.message).catch((failure: unknown) => {
          this.context.logger.warn({ err: (failure as Error).message, sessionId: session.id, reader: reader.name }, 'a refused session read could not be recorded');
        });
      }
      throw error;
    }
    await this.grants.recordRead(reader, read, grant);
  }

  /** The sessions of a listing the reader may see, each read recorded; the others left out. */
  async visible<T extends SessionRecord>(reader: SessionCaller, sessions: readonly T[]): Promise<T[]> {
    if (reader.kind === 'internal') return [...sessions];
    const shown: T[] = [];
    for (const session of sessions) {
      const scope: ReadScope = { agent: session.identityName, target: session.target, at: session.startedAt, what: `session ${session.id}` };
      let grant;
      try {
        grant = await this.grants.authorize(reader.name, scope);
      } catch (error) {
        if (error instanceof AuditError && error.code === AuditErrorCode.PermissionDenied) continue;
        throw error;
      }
      await this.grants.recordRead(reader, { kind: 'session', id: session.id, scope }, grant);
      shown.push(session);
    }
    return shown;
  }
}
