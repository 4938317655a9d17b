import { setTimeout as sleep } from 'node:timers/promises';
import { status as GrpcStatus, type ServiceError } from '@grpc/grpc-js';
import { approvalsV1, SERVICE_PROTOS } from '@tracegate/contracts';
import { grpcClient, INTERNAL_TOKEN_METADATA, type Logger, type PromiseClient } from '@tracegate/runtime';
import type { ReviewDesk, ReviewOutcome, ReviewRequest } from '../postgres/ports.js';

const FINAL: Partial<Record<approvalsV1.ApprovalState, ReviewOutcome['state']>> = {
  [approvalsV1.ApprovalState.APPROVAL_STATE_APPROVED]: 'approved',
  [approvalsV1.ApprovalState.APPROVAL_STATE_DENIED]: 'denied',
  [approvalsV1.ApprovalState.APPROVAL_STATE_EXPIRED]: 'expired',
  [approvalsV1.ApprovalState.APPROVAL_STATE_WITHDRAWN]: 'withdrawn',
};

/** Codes after which watching again can help: the approvals service is restarting or unreachable. */
const TRANSIENT = new Set<number>([GrpcStatus.UNAVAILABLE, GrpcStatus.DEADLINE_EXCEEDED, GrpcStatus.INTERNAL, GrpcStatus.UNKNOWN, GrpcStatus.CANCELLED]);

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
    const id = opened.id;
    onOpened(id);
    const withdraw = () => {
      this.approvals.withdraw({ id, requesterId: request.identity.id, reason: 'the client disconnected while the statement was held' }).catch((error: unknown) =>
        this.logger.warn({ approval: id, err: (error as Error).message }, 'a held statement could not be withdrawn; it will expire'),
      );
    };
    signal.addEventListener('abort', withdraw, { once: true });
    try {
      let pause = this.retryMs;
      for (;;) {
        const final = outcomeOf(opened.state === approvalsV1.ApprovalState.APPROVAL_STATE_PENDING ? undefined : opened);
        if (final) return final;
        try {
          const outcome = await this.watchUntilFinal(id, signal);
          if (outcome) return outcome;
        } catch (error) {
          if (signal.aborted) throw error;
          const code = (error as ServiceError).code;
          if (code !== undefined && !TRANSIENT.has(code)) throw error;
          this.logger.info({ approval: id, err: (error as Error).message }, 'approval watch lost; watching again');
        }
        if (signal.aborted) throw new Error('the client disconnected while the statement was held');
        await sleep(pause, undefined, { signal }).catch(() => undefined);
        pause = Math.min(pause * 2, 5000);
      }
    } finally {
      signal.removeEventListener('abort', withdraw);
    }
  }

  /** One Watch stream: the outcome once final, or undefined when the stream ended first. */
  private watchUntilFinal(id: string, signal: AbortSignal): Promise<ReviewOutcome | undefined> {
    return new Promise((resolve, reject) => {
      const stream = this.approvals.stream<approvalsV1.WatchResponse>('watch', { id });
      const abort = () => stream.cancel();
      signal.addEventListener('abort', abort, { once: true });
      let settled = false;
      const settle = (fn: () => void) => {
        if (settled) return;
        settled = true;
        signal.removeEventListener('abort', abort);
        fn();
      };
      stream.on('data', (message: approvalsV1.WatchResponse) => {
        const outcome = outcomeOf(message.request);
        if (outcome) {
          settle(() => resolve(outcome));
          stream.cancel();
        }
      });
      stream.on('error', (error) => settle(() => reject(error)));
      stream.on('end', () => settle(() => resolve(undefined)));
    });
  }

  close(): void {
    this.approvals.close();
  }
}

function outcomeOf(request: approvalsV1.ApprovalRequest | undefined): ReviewOutcome | undefined {
  const state = request ? FINAL[request.state] : undefined;
  if (!request || !state) return undefined;
  if (state === 'approved') return { state, requestId: request.id, approvers: request.approvers };
  return { state, requestId: request.id, reason: request.reason };
}
