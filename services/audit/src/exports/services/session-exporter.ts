import { Inject, Injectable } from '@nestjs/common';
import { timestampOf, type auditV1 } from '@tracegate/contracts';
import { SERVICE_CONTEXT, type ServiceContext } from '@tracegate/runtime';
import { AUDIT_CONFIG, type AuditConfig } from '../../audit.config.js';
import { AuditError, AuditErrorCode } from '../../errors.js';
import { ReaderGrants, type ExportRecord } from '../../grants/services/reader-grants.js';
import { SessionQueryRepository } from '../../repositories/session-query.repository.js';
import type { SessionCaller } from '../../services/session-access.js';
import { SessionReader } from '../../services/session-reader.js';
import { ExportApprovals } from '../clients/export-approvals.js';
import { describeExport, exportScopeOf, refusalOf } from '../domain/export-scope.js';

export const EXPORT_APPROVALS = Symbol('EXPORT_APPROVALS');

/** Sessions read per page while exporting: bounded memory whatever the window. */
const PAGE = 100;

/**
 * Exports the sessions of a time window with their statements, only once a reviewer approved it:
 * the request is opened with the approvals service in the caller's name (so the caller can never
 * approve it), the caller is told its id, and the export waits on it. Approved, the export is
 * recorded on tracegate.audit.v1 before the first session leaves; denied, expired or withdrawn,
 * the refusal is recorded and the caller gets PERMISSION_DENIED with the reason.
 */
@Injectable()
export class SessionExporter {
  constructor(
    private readonly queries: SessionQueryRepository,
    private readonly reader: SessionReader,
    private readonly grants: ReaderGrants,
    @Inject(EXPORT_APPROVALS) private readonly approvals: ExportApprovals,
    @Inject(AUDIT_CONFIG) private readonly config: AuditConfig,
    @Inject(SERVICE_CONTEXT) private readonly context: ServiceContext,
  ) {}

  async *export(request: auditV1.ExportRequest, caller: SessionCaller, signal: AbortSignal, now = new Date()): AsyncGenerator<auditV1.ExportResponse> {
    if (caller.kind !== 'identity') {
      throw new AuditError(
        AuditErrorCode.PermissionDenied,
        "Export needs an identity's API key in 'x-tracegate-api-key' (set TRACEGATE_API_KEY): the approval is requested in the exporter's name, and reviewers see who asked",
      );
    }
    const scope = exportScopeOf(request, now);
    const total = await this.queries.countStartedBetween(scope.since, scope.until);
    const reviewerGroup = this.config.exportReviewers;
    let opened;
    try {
      opened = await this.approvals.open({
        requester: { id: caller.id, name: caller.name },
        maskedCommand: describeExport(scope, total, caller.name),
        reviewerGroup,
        timeoutSeconds: this.config.exportApprovalTimeoutSeconds,
      });
    } catch (error) {
      this.context.logger.warn({ err: (error as Error).message, approvals: this.approvals.address }, 'an export could not ask for approval');
      throw new AuditError(AuditErrorCode.Unavailable, `the export could not ask the approvals service at ${this.approvals.address} for approval; nothing was exported, try again once it is up`, { cause: error });
    }
    const record: ExportRecord = { approvalRequestId: opened.id, since: scope.since, until: scope.until, sessions: total };
    const base = { session: undefined, approvalRequestId: opened.id, reviewerGroup: opened.reviewerGroup, approvalExpiresAt: opened.expiresAt ? timestampOf(opened.expiresAt) : undefined };
    this.context.logger.info({ approval: opened.id, exporter: caller.name, since: scope.since, until: scope.until, sessions: total }, 'an export waits for approval');
    yield { ...base, approvalState: 'pending', sessionsTotal: 0, sessionsExported: 0, done: false, approvedBy: [] };

    const outcome = await this.approvals.outcome(opened.id, caller.id, signal);
    if (outcome.state !== 'approved') {
      const refusal = refusalOf(outcome, reviewerGroup);
      await this.grants.recordExportRefusal(caller, record, refusal.message);
      throw refusal;
    }
    // Recorded before anything leaves: an export the log did not take is not sent.
    await this.grants.recordExport(caller, record, outcome.approvers);
    const approved = { ...base, approvalState: 'approved' as const, approvedBy: [...outcome.approvers], sessionsTotal: total, done: false };
    yield { ...approved, sessionsExported: 0 };
    let exported = 0;
    let after: { startedAt: Date; id: string } | undefined;
    for (;;) {
      const page = await this.queries.startedBetween(scope.since, scope.until, after, PAGE);
      for (const session of page) {
        if (signal.aborted) return;
        // The projection as it stands: masked text, parameters and rows, reviews beside statements.
        const { session: shown, statements } = await this.reader.get(session.id);
        exported += 1;
        yield { ...approved, session: { session: shown, statements }, sessionsExported: exported };
      }
      if (page.length < PAGE) break;
      const last = page.at(-1)!;
      after = { startedAt: last.startedAt, id: last.id };
    }
    yield { ...approved, sessionsTotal: Math.max(total, exported), sessionsExported: exported, done: true };
  }
}
