import { approvalsV1, SERVICE_PROTOS } from '@tracegate/contracts';
import { awaitApprovalDecision, finalApprovalState, grpcClient, INTERNAL_TOKEN_METADATA, type Logger, type PromiseClient } from '@tracegate/runtime';

/** How an export's approval request ended. */
export type ExportApproval =
  | { readonly state: 'approved'; readonly requestId: string; readonly approvers: readonly string[] }
  | { readonly state: 'denied' | 'expired' | 'withdrawn'; readonly requestId: string; readonly reason: string; readonly decidedBy: string };

/** What the approvals service is asked to hold: an export in the requester's name. */
export interface ExportApprovalTerms {
  readonly requester: { readonly id: string; readonly name: string };
  readonly maskedCommand: string;
  readonly reviewerGroup: string;
  readonly timeoutSeconds: number;
}

export interface OpenedApproval {
  readonly id: string;
  readonly reviewerGroup: string;
  readonly expiresAt: Date | undefined;
}

/** The rule every export's approval request names, so reviewers (and policy on the approvals side) can tell it apart. */
export const EXPORT_RULE = 'audit-export';
/** The approvals service wants a target: an export's is the audit trail itself. */
export const EXPORT_TARGET = 'audit';

/**
 * Asks the approvals service (ApprovalService.Request with the internal token) to hold an export,
 * then watches it until it is final. A broken Watch is opened again with a growing pause while
 * the caller waits; the request itself is durable over there.
 */
export class ExportApprovals {
  private readonly approvals: PromiseClient<approvalsV1.ApprovalServiceClient>;

  constructor(
    readonly address: string,
    internalToken: string,
    private readonly logger: Logger,
    private readonly retryMs = 250,
  ) {
    this.approvals = grpcClient<approvalsV1.ApprovalServiceClient>(SERVICE_PROTOS.approvals.files[0], 'tracegate.approvals.v1.ApprovalService', address, {
      metadata: { [INTERNAL_TOKEN_METADATA]: internalToken },
      deadlineMs: 10_000,
    });
  }

  async open(terms: ExportApprovalTerms): Promise<OpenedApproval> {
    const { request } = await this.approvals.request({
      requesterId: terms.requester.id,
      requesterName: terms.requester.name,
      target: EXPORT_TARGET,
      maskedCommand: terms.maskedCommand,
      traceId: '',
      rule: EXPORT_RULE,
      reviewerGroup: terms.reviewerGroup,
      quorum: 1,
      timeoutSeconds: terms.timeoutSeconds,
      sessionId: '',
    });
    if (!request) throw new Error('the approvals service opened no request');
    const expires = request.expiresAt ? new Date(request.expiresAt.seconds * 1000 + Math.floor(request.expiresAt.nanos / 1e6)) : undefined;
    return { id: request.id, reviewerGroup: request.reviewerGroup, expiresAt: expires };
  }

  /** Waits until the request is final; the signal (the exporter went away) withdraws it. */
  async outcome(id: string, requesterId: string, signal: AbortSignal): Promise<ExportApproval> {
    const final = await awaitApprovalDecision(this.approvals, id, { requesterId, signal, withdrawReason: 'the requester stopped waiting for the export', logger: this.logger, retryMs: this.retryMs });
    return outcomeOf(final);
  }

  close(): void {
    this.approvals.close();
  }
}

function outcomeOf(request: approvalsV1.ApprovalRequest): ExportApproval {
  const state = finalApprovalState(request) ?? 'denied';
  if (state === 'approved') return { state, requestId: request.id, approvers: [...request.approvers] };
  return { state, requestId: request.id, reason: request.reason, decidedBy: request.decidedBy };
}
