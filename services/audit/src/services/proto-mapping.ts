import { timestampOf, type auditV1 } from '@tracegate/contracts';
import type { ApprovalReview } from '../domain/approval-review.js';
import type { SessionRecord, StatementRecord } from '../domain/session-projection.js';

export { timestampOf };

export function toProtoSession(row: SessionRecord): auditV1.Session {
  return {
    id: row.id,
    identityId: row.identityId,
    identityName: row.identityName,
    identityKind: row.identityKind,
    target: row.target,
    clientAddress: row.clientAddress,
    applicationName: row.applicationName,
    protocol: row.protocol,
    credentialLeaseId: row.credentialLeaseId,
    startedAt: timestampOf(row.startedAt),
    endedAt: row.endedAt ? timestampOf(row.endedAt) : undefined,
    endReason: row.endReason,
    statementCount: row.statementCount,
    lastSequence: row.lastSequence,
  };
}

export function toProtoStatement(row: StatementRecord, review?: ApprovalReview, resultRows: readonly (readonly (string | null)[])[] = []): auditV1.Statement {
  return {
    sequence: row.sequence,
    statementId: row.statementId,
    maskedText: row.text,
    fingerprint: row.fingerprint,
    protocol: row.protocol,
    inMultiStatement: row.inMultiStatement,
    parameterCount: row.parameterCount,
    effect: row.effect,
    rule: row.rule,
    reason: row.reason,
    policyVersion: row.policyVersion,
    maskingProfile: row.maskingProfile,
    traceId: row.traceId,
    approvalRequestId: row.approvalRequestId,
    approvalState: row.approvalState,
    approvedBy: review ? [...review.approvers] : [],
    approvalDecidedBy: review?.decidedBy ?? '',
    approvalReason: review?.reason ?? '',
    at: timestampOf(row.requestedAt),
    completed: row.completedAt !== null,
    commandTag: row.commandTag,
    rowCount: row.rows,
    durationMs: row.durationMs,
    sqlstate: row.sqlstate,
    error: row.errorMessage,
    executed: row.executed,
    completedAt: row.completedAt ? timestampOf(row.completedAt) : undefined,
    resultColumns: [...row.resultColumns],
    resultRows: resultRows.map((values) => ({ values: values.map(nullableText) })),
    rowsRecorded: row.rowsRecorded,
    masked: { ...row.masked },
    parameters: row.parameters.map(nullableText),
  };
}

/** SQL NULL as an unset text, as the gateway's events carry it. */
function nullableText(value: string | null): auditV1.NullableText {
  return value === null ? {} : { text: value };
}
