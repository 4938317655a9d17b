import type { auditV1 } from '@tracegate/contracts';
import { AuditError, AuditErrorCode } from '../../errors.js';
import type { ExportApproval } from '../clients/export-approvals.js';

/** The sessions an export holds: those started in [since, until). */
export interface ExportScope {
  readonly since: Date;
  readonly until: Date;
}

function dateOf(timestamp: { seconds: number; nanos: number } | null | undefined): Date | undefined {
  return timestamp ? new Date(timestamp.seconds * 1000 + Math.floor(timestamp.nanos / 1e6)) : undefined;
}

/** Pure: the scope an ExportRequest asks for, `until` defaulting to now; each mistake a sentence naming the field. */
export function exportScopeOf(request: auditV1.ExportRequest, now: Date): ExportScope {
  const since = dateOf(request.since);
  if (!since) throw AuditError.invalidArgument('since', 'is required: the export holds the sessions started from then on (e.g. --since 2026-11-01T00:00:00Z)');
  const until = dateOf(request.until) ?? now;
  if (until.getTime() <= since.getTime()) {
    throw AuditError.invalidArgument('until', `(${until.toISOString()}) must be after since (${since.toISOString()}): the export holds the sessions started in between`);
  }
  return { since, until };
}

/** What the reviewers read: who exports what, so they can decide without asking. */
export function describeExport(scope: ExportScope, sessions: number, requester: string): string {
  return (
    `${requester} exports the audit trail: ${sessions} session${sessions === 1 ? '' : 's'} started from ${scope.since.toISOString()} until ${scope.until.toISOString()}, ` +
    'with their statements, masked parameters and recorded (masked) result rows, as JSON lines'
  );
}

/** The sentence an exporter whose request was not approved reads (PERMISSION_DENIED). */
export function refusalOf(outcome: Exclude<ExportApproval, { state: 'approved' }>, reviewerGroup: string): AuditError {
  const why = outcome.reason ? `: ${outcome.reason}` : '';
  switch (outcome.state) {
    case 'denied':
      return new AuditError(AuditErrorCode.PermissionDenied, `export request ${outcome.requestId} was denied${outcome.decidedBy ? ` by ${outcome.decidedBy}` : ''}${why}; nothing was exported`);
    case 'expired':
      return new AuditError(
        AuditErrorCode.PermissionDenied,
        `export request ${outcome.requestId} expired before a member of '${reviewerGroup}' approved it; nothing was exported. Ask again and tell a reviewer (\`tracegate approvals approve <id>\`)`,
      );
    case 'withdrawn':
      return new AuditError(AuditErrorCode.PermissionDenied, `export request ${outcome.requestId} was withdrawn${why}; nothing was exported`);
  }
}
