import { setTimeout as sleep } from 'node:timers/promises';
import { status as GrpcStatus, type ServiceError } from '@grpc/grpc-js';
import { approvalsV1, SERVICE_PROTOS } from '@tracegate/contracts';
import { grpcClient, INTERNAL_TOKEN_METADATA, type Logger, type PromiseClient } from '@tracegate/runtime';

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

const FINAL: Partial<Record<approvalsV1.ApprovalState, ExportApproval['state']>> = {
  [approvalsV1.ApprovalState.APPROVAL_STATE_APPROVED]: 'approved',
  [approvalsV1.ApprovalState.APPROVAL_STATE_DENIED]: 'denied',
  [approvalsV1.ApprovalState.APPROVAL_STATE_EXPIRED]: 'expired',
  [approvalsV1.ApprovalState.APPROVAL_STATE_WITHDRAWN]: 'withdrawn',
};

/** Codes after which watching again can help: the approvals service is restarting or unreachable. */
const TRANSIENT = new Set<number>([GrpcStatus.UNAVAILABLE, GrpcStatus.DEADLINE_EXCEEDED, GrpcStatus.INTERNAL, GrpcStatus.UNKNOWN, GrpcStatus.CANCELLED]);

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
    const withdraw = () => {
      this.approvals.withdraw({ id, requesterId, reason: 'the requester stopped waiting for the export' }).catch((error: unknown) =>
        this.logger.warn({ approval: id, err: (error as Error).message }, 'an abandoned export request could not be withdrawn; it will expire'),
      );
    };
    signal.addEventListener('abort', withdraw, { once: true });
    try {
      let pause = this.retryMs;
      for (;;) {
        try {
          const outcome = await this.watchUntilFinal(id, signal);
          if (outcome) return outcome;
        } catch (error) {
          if (signal.aborted) throw error;
          const code = (error as ServiceError).code;
          if (code !== undefined && !TRANSIENT.has(code)) throw error;
          this.logger.info({ approval: id, err: (error as Error).message }, 'export approval watch lost; watching again');
        }
        if (signal.aborted) throw new Error('the requester stopped waiting for the export');
        await sleep(pause, undefined, { signal }).catch(() => undefined);
        pause = Math.min(pause * 2, 5000);
      }
    } finally {
      signal.removeEventListener('abort', withdraw);
    }
  }

  /** One Watch stream: the outcome once final, or undefined when the stream ended first. */
  private watchUntilFinal(id: string, signal: AbortSignal): Promise<ExportApproval | undefined> {
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
        const outcome = outcomeOf(message.request ?? undefined);
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

function outcomeOf(request: approvalsV1.ApprovalRequest | undefined): ExportApproval | undefined {
  const state = request ? FINAL[request.state] : undefined;
  if (!request || !state) return undefined;
  if (state === 'approved') return { state, requestId: request.id, approvers: [...request.approvers] };
  return { state, requestId: request.id, reason: request.reason, decidedBy: request.decidedBy };
}
