import { Inject, Injectable, type CanActivate, type ExecutionContext } from '@nestjs/common';
import type { Metadata } from '@grpc/grpc-js';
import { InternalToken } from '@tracegate/runtime';
import { PolicyError, PolicyErrorCode } from '../domain/policy-error.js';
import { POLICY_CONFIG, type PolicyConfig } from '../policy.config.js';

/** Admits only callers that present TRACEGATE_INTERNAL_TOKEN: publishing a policy changes what everyone may run. */
@Injectable()
export class InternalTokenGuard implements CanActivate {
  private readonly token: InternalToken;

  constructor(@Inject(POLICY_CONFIG) config: PolicyConfig) {
    this.token = new InternalToken(config.internalToken);
  }

  canActivate(context: ExecutionContext): boolean {
    const problem = this.token.problem(context.switchToRpc().getContext<Metadata>(), 'policy service');
    if (problem) throw new PolicyError(PolicyErrorCode.Unauthenticated, problem);
    return true;
  }
}
