import { Controller, UseFilters, UseGuards } from '@nestjs/common';
import type { Observable } from 'rxjs';
import { policyV1 } from '@tracegate/contracts';
import { PolicyDecider } from '../services/policy-decider.js';
import { InternalTokenGuard } from './internal-token.guard.js';
import { PolicyErrorFilter } from './policy-error.filter.js';

/** tracegate.policy.v1.PolicyService over gRPC: only callers holding the internal token. */
@Controller()
@UseFilters(PolicyErrorFilter)
@UseGuards(InternalTokenGuard)
@policyV1.PolicyServiceControllerMethods()
export class PolicyController implements policyV1.PolicyServiceController {
  constructor(private readonly decider: PolicyDecider) {}

  decide(request: policyV1.DecideRequest): policyV1.DecideResponse {
    return this.decider.decide(request);
  }

  decideBatch(request: policyV1.DecideBatchRequest): policyV1.DecideBatchResponse {
    return this.decider.decideBatch(request);
  }

  explain(request: policyV1.ExplainRequest): policyV1.ExplainResponse {
    return this.decider.explain(request);
  }

  publishPolicy(request: policyV1.PublishPolicyRequest): Promise<policyV1.PublishPolicyResponse> {
    return this.decider.publish(request);
  }

  listPolicyVersions(request: policyV1.ListPolicyVersionsRequest): Promise<policyV1.ListPolicyVersionsResponse> {
    return this.decider.listVersions(request);
  }

  watchPolicyVersions(_request: policyV1.WatchPolicyVersionsRequest): Observable<policyV1.WatchPolicyVersionsResponse> {
    return this.decider.versions();
  }
}
