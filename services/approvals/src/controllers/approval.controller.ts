import { Controller, UseFilters } from '@nestjs/common';
import type { Metadata } from '@grpc/grpc-js';
import { defer, from, map, mergeMap, type Observable } from 'rxjs';
import { approvalsV1 } from '@tracegate/contracts';
import { ApprovalError } from '../errors.js';
import { ApprovalDesk } from '../services/approval-desk.js';
import { statusOf, toProtoApproval } from '../services/proto-mapping.js';
import { ApprovalErrorFilter } from './approval-error.filter.js';
import { CallerCheck } from './caller-check.js';

@Controller()
@UseFilters(ApprovalErrorFilter)
@approvalsV1.ApprovalServiceControllerMethods()
export class ApprovalController implements approvalsV1.ApprovalServiceController {
  constructor(
    private readonly desk: ApprovalDesk,
    private readonly callers: CallerCheck,
  ) {}

  async request(request: approvalsV1.RequestRequest, metadata?: Metadata): Promise<approvalsV1.RequestResponse> {
    this.callers.requireService(metadata);
    const approval = await this.desk.request({
      requester: { id: request.requesterId, name: request.requesterName },
      target: request.target,
      maskedCommand: request.maskedCommand,
      traceId: request.traceId,
      sessionId: request.sessionId,
      rule: request.rule,
      reviewerGroup: request.reviewerGroup,
      quorum: request.quorum,
      timeoutSeconds: request.timeoutSeconds,
    });
    return { request: toProtoApproval(approval) };
  }

  async decide(request: approvalsV1.DecideRequest, metadata?: Metadata): Promise<approvalsV1.DecideResponse> {
    const reviewer = await this.callers.reviewer(metadata, request.reviewerId);
    let approval;
    switch (request.verdict) {
      case approvalsV1.Verdict.VERDICT_APPROVE:
        approval = await this.desk.decide(request.id, reviewer, { kind: 'approve' });
        break;
      case approvalsV1.Verdict.VERDICT_DENY:
        approval = await this.desk.decide(request.id, reviewer, { kind: 'deny', reason: request.reason });
        break;
      default:
        throw ApprovalError.invalidArgument('verdict', 'must be VERDICT_APPROVE or VERDICT_DENY');
    }
    return { request: toProtoApproval(approval) };
  }

  async get(request: approvalsV1.GetRequest, metadata?: Metadata): Promise<approvalsV1.GetResponse> {
    await this.callers.requireReader(metadata);
    const { approval } = await this.desk.get(request.id);
    return { request: toProtoApproval(approval) };
  }

  async list(request: approvalsV1.ListRequest, metadata?: Metadata): Promise<approvalsV1.ListResponse> {
    await this.callers.requireReader(metadata);
    const approvals = await this.desk.list(statusOf(request.state));
    return { requests: approvals.map(toProtoApproval) };
  }

  watch(request: approvalsV1.WatchRequest, metadata?: Metadata): Observable<approvalsV1.WatchResponse> {
    return defer(() => from(this.callers.requireReader(metadata))).pipe(
      mergeMap(() => this.desk.watch(request.id)),
      map(({ approval }) => ({ request: toProtoApproval(approval) })),
    );
  }

  async withdraw(request: approvalsV1.WithdrawRequest, metadata?: Metadata): Promise<approvalsV1.WithdrawResponse> {
    this.callers.requireService(metadata);
    const approval = await this.desk.withdraw(request.id, request.requesterId, request.reason);
    return { request: toProtoApproval(approval) };
  }
}
