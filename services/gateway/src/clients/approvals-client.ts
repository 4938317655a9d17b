import { approvalsV1, SERVICE_PROTOS } from '@tracegate/contracts';
import { awaitApprovalDecision, finalApprovalState, grpcClient, INTERNAL_TOKEN_METADATA, isFinalApproval, type Logger, type PromiseClient } from '@tracegate/runtime';
import type { ReviewDesk, ReviewOutcome, ReviewRequest } from '../postgres/ports.js';

/**
 * Holds statements with the approvals service: Request, then Watch until the request is final.
 * A held statement outlives a restart of the approvals service: a broken Watch is opened again
 * (with a growing pause) for as long as the client waits; the request itself is durable there.
 */
export class ApprovalsClient implements ReviewDesk {
  private readonly approvals: PromiseClient<approvalsV1.ApprovalServiceClient>;

  constructor(
    address: string,
    internalToken: string,
    private readonly logger: Logger,
    private readonly retryMs = 250,
  ) {
    this.approvals = grpcClient<approvalsV1.ApprovalServiceClient>(SERVICE_PROTOS.approvals.files[0], 'tracegate.approvals.v1.ApprovalService', address, {
      metadata: { [INTERNAL_TOKEN_METADATA]: internalToken },
      deadlineMs: 10_000,
    });
  }

  async hold(request: ReviewRequest, signal: AbortSignal, onOpened: (requestId: string) => void): Promise<ReviewOutcome> {
    const { request: opened } = await this.approvals.request({
      requesterId: request.identity.id,
      requesterName: request.identity.name,
      target: request.target,
      maskedCommand: request.maskedCommand,
      traceId: request.traceId,
      rule: request.rule,
      reviewerGroup: request.terms.reviewerGroup,
      quorum: request.terms.quorum,
      timeoutSeconds: request.terms.timeoutSeconds,
      sessionId: request.sessionId,
    } as approvalsV1.RequestRequest);
    if (!opened) throw new Error('the approvals service opened no request');
    onOpened(opened.id);
    const final = isFinalApproval(opened)
      ? opened
      : await awaitApprovalDecision(this.approvals, opened.id, {
          requesterId: request.identity.id,
          signal,
          withdrawReason: 'the client disconnected while the statement was held',
          logger: this.logger,
          retryMs: this.retryMs,
        });
    return outcomeOf(final);
  }

  close(): void {
    this.approvals.close();
  }
}

function outcomeOf(request: approvalsV1.ApprovalRequest): ReviewOutcome {
  const state = finalApprovalState(request) ?? 'denied';
  if (state === 'approved') return { state, requestId: request.id, approvers: request.approvers };
  return { state, requestId: request.id, reason: request.reason };
}
