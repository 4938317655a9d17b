import { Inject, Injectable } from '@nestjs/common';
import type { Metadata } from '@grpc/grpc-js';
import { InternalToken } from '@tracegate/runtime';
import type { Reviewer } from '../domain/approval.js';
import { ApprovalError, ApprovalErrorCode } from '../errors.js';
import { APPROVALS_CONFIG, type ApprovalsConfig } from '../approvals.config.js';
import { API_KEY_METADATA, ReviewerDirectory } from '../repositories/reviewer-directory.js';

/**
 * Who may call what. Services (the gateway) and the CLI present the internal token; a reviewer
 * deciding presents their own API key, so the verdict is theirs and not whoever holds the token.
 */
@Injectable()
export class CallerCheck {
  private readonly token: InternalToken;

  constructor(
    @Inject(APPROVALS_CONFIG) config: ApprovalsConfig,
    private readonly directory: ReviewerDirectory,
  ) {
    this.token = new InternalToken(config.internalToken);
  }

  /** Request and Withdraw: only services holding the internal token. */
  requireService(metadata: Metadata | undefined): void {
    const problem = this.token.problem(metadata, 'approvals service');
    if (problem) throw new ApprovalError(ApprovalErrorCode.Unauthenticated, problem);
  }

  /** Get, List, Watch: a service, or any active tracegate identity's API key. */
  async requireReader(metadata: Metadata | undefined): Promise<void> {
    const apiKey = apiKeyOf(metadata);
    if (apiKey !== undefined) {
      await this.directory.authenticate(apiKey);
      return;
    }
    this.requireService(metadata);
  }

  /**
   * Decide: the reviewer is the API key's identity when one is presented; otherwise a service
   * holding the internal token names the reviewer by identity id or name.
   */
  async reviewer(metadata: Metadata | undefined, reviewerId: string): Promise<Reviewer> {
    const apiKey = apiKeyOf(metadata);
    if (apiKey !== undefined) {
      const reviewer = await this.directory.authenticate(apiKey);
      if (reviewerId && reviewerId !== reviewer.id && reviewerId !== reviewer.name) {
        throw ApprovalError.invalidArgument('reviewer_id', `'${reviewerId.slice(0, 80)}' is not the identity of the API key presented ('${reviewer.name}'); leave it empty, the key says who decides`);
      }
      return reviewer;
    }
    const problem = this.token.problem(metadata, 'approvals service');
    if (problem) {
      throw new ApprovalError(ApprovalErrorCode.Unauthenticated, `deciding needs the reviewer's own API key in the gRPC metadata '${API_KEY_METADATA}' (set TRACEGATE_API_KEY for the CLI); ${problem}`);
    }
    if (!reviewerId) throw ApprovalError.invalidArgument('reviewer_id', `is required when no API key is presented: the identity id or name of the reviewer deciding`);
    const reviewer = await this.directory.find(reviewerId);
    if (!reviewer) throw ApprovalError.invalidArgument('reviewer_id', `'${reviewerId.slice(0, 80)}' is not an active tracegate identity; \`tracegate key list\` shows them`);
    return reviewer;
  }
}

function apiKeyOf(metadata: Metadata | undefined): string | undefined {
  const value = metadata?.get(API_KEY_METADATA)[0];
  return typeof value === 'string' ? value : undefined;
}
