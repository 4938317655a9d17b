import { randomUUID } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import { timestampOf, type auditV1 } from '@tracegate/contracts';
import { TOPICS } from '@tracegate/events';
import { AuditError, AuditErrorCode } from '../../errors.js';
import { decideRead, isActive, MAX_GRANT_SECONDS, type ReaderGrantRecord, type ReadScope } from '../domain/reader-grant.js';
import type { ReaderGrantEntity } from '../entities/reader-grant.entity.js';
import { AuditEventWriter } from '../repositories/audit-event-writer.js';
import { ReaderGrantRepository } from '../repositories/reader-grant.repository.js';

/** Identity and target names as the broker accepts them. */
const NAME = /^[A-Za-z0-9][A-Za-z0-9_.@-]{0,62}$/;
const GRANT_ID = /^rg-[0-9a-f-]{36}$/;

/** What was read, as the access event names it. */
export interface ReadRecord {
  /** `trace`, `session`… */
  readonly kind: string;
  readonly id: string;
  readonly scope: ReadScope;
}

function dateOf(timestamp: { seconds: number; nanos: number } | undefined): Date | null {
  return timestamp ? new Date(timestamp.seconds * 1000 + Math.floor(timestamp.nanos / 1_000_000)) : null;
}

export function toProtoGrant(grant: ReaderGrantRecord): auditV1.ReaderGrant {
  return {
    id: grant.id,
    reader: grant.reader,
    agent: grant.agent ?? '',
    target: grant.target ?? '',
    from: grant.from ? timestampOf(grant.from) : undefined,
    until: grant.until ? timestampOf(grant.until) : undefined,
    expiresAt: timestampOf(grant.expiresAt),
    createdAt: timestampOf(grant.createdAt),
    revokedAt: grant.revokedAt ? timestampOf(grant.revokedAt) : undefined,
    reason: grant.reason,
  };
}

function grantData(grant: ReaderGrantRecord): Record<string, unknown> {
  return {
    grantId: grant.id,
    reader: grant.reader,
    agent: grant.agent ?? '',
    target: grant.target ?? '',
    from: grant.from?.toISOString() ?? '',
    until: grant.until?.toISOString() ?? '',
    expiresAt: grant.expiresAt.toISOString(),
    reason: grant.reason,
  };
}

/**
 * Who may read the audit trail. Administrators create and revoke grants; every read goes through
 * {@link ReaderGrants.authorize} and is then recorded with {@link ReaderGrants.recordRead}.
 * Grant changes and reads are events on tracegate.audit.v1, one chain per reader (`readers/<name>`).
 */
@Injectable()
export class ReaderGrants {
  constructor(
    private readonly grants: ReaderGrantRepository,
    private readonly events: AuditEventWriter,
  ) {}

  async create(request: auditV1.CreateReaderGrantRequest, now = new Date()): Promise<ReaderGrantRecord> {
    const grant = checkNewGrant(request, now);
    return this.grants.transaction(async (manager) => {
      await this.grants.insert(manager, grant);
      await this.events.write(manager, readerEvent('granted', grant.reader, { ...grantData(grant) }, now));
      return grant;
    });
  }

  list(request: auditV1.ListReaderGrantsRequest, now = new Date()): Promise<ReaderGrantRecord[]> {
    if (request.reader !== '' && !NAME.test(request.reader)) throw AuditError.invalidArgument('reader', `'${request.reader.slice(0, 80)}' is not an identity name`);
    return this.grants.list({ reader: request.reader || undefined, includeInactive: request.includeInactive, now });
  }

  async revoke(id: string, now = new Date()): Promise<ReaderGrantRecord> {
    if (!GRANT_ID.test(id)) throw notFound(id);
    return this.grants.transaction(async (manager) => {
      const grant = await this.grants.findForUpdate(manager, id);
      if (!grant) throw notFound(id);
      // A second revocation changes nothing and records nothing: the first one stands.
      if (grant.revokedAt) return grant;
      await this.grants.markRevoked(manager, id, now);
      await this.events.write(manager, readerEvent('revoked', grant.reader, { ...grantData(grant), revokedAt: now.toISOString() }, now));
      return { ...grant, revokedAt: now };
    });
  }

  /**
   * The grant that lets `reader` (an identity name) read what `scope` describes, now; otherwise
   * PERMISSION_DENIED with a sentence saying what is missing. Other reads of the audit trail
   * (sessions) call this too.
   */
  async authorize(reader: string, scope: ReadScope, now = new Date()): Promise<ReaderGrantRecord> {
    const decision = decideRead(await this.grants.ofReader(reader), reader, scope, now);
    if (!decision.allowed) throw new AuditError(AuditErrorCode.PermissionDenied, decision.reason);
    return decision.grant;
  }

  /**
   * Records a read on the log before it is answered (dev.tracegate.auditaccess.read.v1): when
   * the log cannot take it, the read fails with UNAVAILABLE rather than go unrecorded.
   */
  async recordRead(reader: { readonly id: string; readonly name: string }, read: ReadRecord, grant: ReaderGrantRecord, now = new Date()): Promise<void> {
    await this.grants.transaction((manager) =>
      this.events.write(manager, readerEvent('read', reader.name, { reader: reader.name, readerId: reader.id, kind: read.kind, id: read.id, grantId: grant.id, agent: read.scope.agent ?? '', targets: targetList(read.scope) }, now)),
    );
  }

  /** A refused read is recorded too (dev.tracegate.auditaccess.refused.v1), with the sentence the reader got. */
  async recordRefusal(reader: { readonly id: string; readonly name: string }, read: ReadRecord, reason: string, now = new Date()): Promise<void> {
    await this.grants.transaction((manager) =>
      this.events.write(manager, readerEvent('refused', reader.name, { reader: reader.name, readerId: reader.id, kind: read.kind, id: read.id, reason }, now)),
    );
  }

  /** An approved export, recorded before any session is sent (dev.tracegate.auditaccess.exported.v1). */
  async recordExport(reader: { readonly id: string; readonly name: string }, exported: ExportRecord, approvedBy: readonly string[], now = new Date()): Promise<void> {
    await this.grants.transaction((manager) =>
      this.events.write(manager, readerEvent('exported', reader.name, { reader: reader.name, readerId: reader.id, kind: 'export', id: exported.approvalRequestId, ...exportData(exported), approvedBy: [...approvedBy] }, now)),
    );
  }

  /** An export that was not approved (dev.tracegate.auditaccess.refused.v1, kind export), with the sentence the exporter got. */
  async recordExportRefusal(reader: { readonly id: string; readonly name: string }, exported: ExportRecord, reason: string, now = new Date()): Promise<void> {
    await this.grants.transaction((manager) =>
      this.events.write(manager, readerEvent('refused', reader.name, { reader: reader.name, readerId: reader.id, kind: 'export', id: exported.approvalRequestId, ...exportData(exported), reason }, now)),
    );
  }
}

/** What an export's access event records (dev.tracegate.auditaccess.exported.v1, or .refused.v1 with kind export). */
export interface ExportRecord {
  readonly approvalRequestId: string;
  readonly since: Date;
  readonly until: Date;
  readonly sessions: number;
}

function exportData(exported: ExportRecord): Record<string, unknown> {
  return { since: exported.since.toISOString(), until: exported.until.toISOString(), sessions: exported.sessions };
}

function targetList(scope: ReadScope): string[] {
  return scope.target === undefined ? [] : typeof scope.target === 'string' ? [scope.target] : [...scope.target];
}

function readerEvent(event: 'granted' | 'revoked' | 'read' | 'refused' | 'exported', reader: string, data: Record<string, unknown>, time: Date) {
  return { topic: TOPICS.audit.name, type: `dev.tracegate.auditaccess.${event}.v1`, subject: `readers/${reader}`, key: reader, data, time } as const;
}

function notFound(id: string): AuditError {
  return new AuditError(AuditErrorCode.NotFound, `no reader grant has id '${id.slice(0, 80)}'; run \`tracegate grants list --all\` to see the grants`);
}

/** Pure checks of a CreateReaderGrantRequest, each failure a sentence naming the field. */
export function checkNewGrant(request: auditV1.CreateReaderGrantRequest, now: Date): ReaderGrantEntity {
  if (!NAME.test(request.reader)) {
    throw AuditError.invalidArgument('reader', request.reader === '' ? 'is required: the identity name allowed to read' : `'${request.reader.slice(0, 80)}' is not an identity name`);
  }
  if ((request.agent === '') === (request.target === '')) {
    throw AuditError.invalidArgument('scope', 'must be exactly one of agent (traces that identity submitted) or target (traces attached on that target)');
  }
  for (const [field, value] of [['agent', request.agent], ['target', request.target]] as const) {
    if (value !== '' && !NAME.test(value)) throw AuditError.invalidArgument(field, `'${value.slice(0, 80)}' is not a valid name`);
  }
  const from = dateOf(request.from);
  const until = dateOf(request.until);
  if (from && until && from.getTime() > until.getTime()) throw AuditError.invalidArgument('from', `(${from.toISOString()}) is after until (${until.toISOString()}); the window would be empty`);
  const seconds = request.expiresInSeconds;
  if (!Number.isInteger(seconds) || seconds < 1 || seconds > MAX_GRANT_SECONDS) {
    throw AuditError.invalidArgument('expires_in_seconds', `must be from 1 second to 30 days (${MAX_GRANT_SECONDS}); a reader grant is always time-bound`);
  }
  if (request.reason.length > 500) throw AuditError.invalidArgument('reason', 'is longer than 500 characters');
  return {
    id: `rg-${randomUUID()}`,
    reader: request.reader,
    agent: request.agent || null,
    target: request.target || null,
    from,
    until,
    expiresAt: new Date(now.getTime() + seconds * 1000),
    createdAt: now,
    revokedAt: null,
    reason: request.reason,
  };
}

export { isActive };
