import { setTimeout as sleep } from 'node:timers/promises';
import { status as GrpcStatus, type ServiceError } from '@grpc/grpc-js';
import { approvalsV1 } from '@tracegate/contracts';
import type { PromiseClient } from './grpc-client.js';
import type { Logger } from './logger.js';

/** Codes after which watching again can help: the approvals service is restarting or unreachable. */
const TRANSIENT = new Set<number>([GrpcStatus.UNAVAILABLE, GrpcStatus.DEADLINE_EXCEEDED, GrpcStatus.INTERNAL, GrpcStatus.UNKNOWN, GrpcStatus.CANCELLED]);

/** How an approval request ended. */
export type FinalApprovalState = 'approved' | 'denied' | 'expired' | 'withdrawn';

const FINAL: Partial<Record<approvalsV1.ApprovalState, FinalApprovalState>> = {
  [approvalsV1.ApprovalState.APPROVAL_STATE_APPROVED]: 'approved',
  [approvalsV1.ApprovalState.APPROVAL_STATE_DENIED]: 'denied',
  [approvalsV1.ApprovalState.APPROVAL_STATE_EXPIRED]: 'expired',
  [approvalsV1.ApprovalState.APPROVAL_STATE_WITHDRAWN]: 'withdrawn',
};

/** How the request ended, or undefined while it is pending. */
export function finalApprovalState(request: approvalsV1.ApprovalRequest | undefined): FinalApprovalState | undefined {
  return request ? FINAL[request.state] : undefined;
}

/** Whether the request has ended (approved, denied, expired or withdrawn). */
export function isFinalApproval(request: approvalsV1.ApprovalRequest | undefined): boolean {
  return finalApprovalState(request) !== undefined;
}

export interface ApprovalWait {
  readonly requesterId: string;
  /** Aborted when the requester stops waiting: the request is then withdrawn with `withdrawReason`. */
  readonly signal: AbortSignal;
  readonly withdrawReason: string;
  readonly logger: Logger;
  /** The first pause before watching again after a broken Watch; it doubles up to 5 s. */
  readonly retryMs?: number;
}

/**
 * Waits until an approval request is final (approved, denied, expired or withdrawn) and returns it
 * as it ended. The request is durable in the approvals service, so a broken Watch (the service
 * restarting) is opened again, with a growing pause, for as long as the requester waits.
 */
export async function awaitApprovalDecision(approvals: PromiseClient<approvalsV1.ApprovalServiceClient>, id: string, wait: ApprovalWait): Promise<approvalsV1.ApprovalRequest> {
  const { signal, logger } = wait;
  const withdraw = () => {
    approvals.withdraw({ id, requesterId: wait.requesterId, reason: wait.withdrawReason }).catch((error: unknown) =>
      logger.warn({ approval: id, err: (error as Error).message }, 'an approval request could not be withdrawn; it will expire'),
    );
  };
  signal.addEventListener('abort', withdraw, { once: true });
  try {
    let pause = wait.retryMs ?? 250;
    for (;;) {
      try {
        const final = await watchUntilFinal(approvals, id, signal);
        if (final) return final;
      } catch (error) {
        if (signal.aborted) throw error;
        const code = (error as ServiceError).code;
        if (code !== undefined && !TRANSIENT.has(code)) throw error;
        logger.info({ approval: id, err: (error as Error).message }, 'approval watch lost; watching again');
      }
      if (signal.aborted) throw new Error(wait.withdrawReason);
      await sleep(pause, undefined, { signal }).catch(() => undefined);
      pause = Math.min(pause * 2, 5000);
    }
  } finally {
    signal.removeEventListener('abort', withdraw);
  }
}

/** One Watch stream: the request once final, or undefined when the stream ended first. */
function watchUntilFinal(approvals: PromiseClient<approvalsV1.ApprovalServiceClient>, id: string, signal: AbortSignal): Promise<approvalsV1.ApprovalRequest | undefined> {
  return new Promise((resolve, reject) => {
    const stream = approvals.stream<approvalsV1.WatchResponse>('watch', { id });
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
      const request = message.request ?? undefined;
      if (request && isFinalApproval(request)) {
        settle(() => resolve(request));
        stream.cancel();
      }
    });
    stream.on('error', (error) => settle(() => reject(error)));
    stream.on('end', () => settle(() => resolve(undefined)));
  });
}
