import { approvalsV1, timestampOf } from '@tracegate/contracts';
import { assertUnreachable } from '@tracegate/runtime';
import type { Approval, ApprovalStatus } from '../domain/approval.js';

const { ApprovalState } = approvalsV1;

export function protoStateOf(status: ApprovalStatus): approvalsV1.ApprovalState {
  switch (status) {
    case 'pending':
      return ApprovalState.APPROVAL_STATE_PENDING;
    case 'approved':
      return ApprovalState.APPROVAL_STATE_APPROVED;
    case 'denied':
      return ApprovalState.APPROVAL_STATE_DENIED;
    case 'expired':
      return ApprovalState.APPROVAL_STATE_EXPIRED;
    case 'withdrawn':
      return ApprovalState.APPROVAL_STATE_WITHDRAWN;
    default:
      return assertUnreachable(status);
  }
}

/** The status a List filter names; undefined for UNSPECIFIED (every request). */
export function statusOf(state: approvalsV1.ApprovalState): ApprovalStatus | undefined {
  switch (state) {
    case ApprovalState.APPROVAL_STATE_PENDING:
      return 'pending';
    case ApprovalState.APPROVAL_STATE_APPROVED:
      return 'approved';
    case ApprovalState.APPROVAL_STATE_DENIED:
      return 'denied';
    case ApprovalState.APPROVAL_STATE_EXPIRED:
      return 'expired';
    case ApprovalState.APPROVAL_STATE_WITHDRAWN:
      return 'withdrawn';
    default:
      return undefined;
  }
}

export function toProtoApproval(a: Approval): approvalsV1.ApprovalRequest {
  return {
    id: a.id,
    requesterId: a.requester.id,
    requesterName: a.requester.name,
    target: a.target,
    maskedCommand: a.maskedCommand,
    traceId: a.traceId,
    rule: a.rule,
    reviewerGroup: a.reviewerGroup,
    quorum: a.quorum,
    approvers: a.approvers.map((r) => r.name || r.id),
    state: protoStateOf(a.status),
    reason: a.reason,
    expiresAt: timestampOf(a.expiresAt),
    createdAt: timestampOf(a.requestedAt),
    sessionId: a.sessionId,
    decidedBy: a.decidedBy ? a.decidedBy.name || a.decidedBy.id : '',
    finishedAt: a.finishedAt ? timestampOf(a.finishedAt) : undefined,
  };
}
