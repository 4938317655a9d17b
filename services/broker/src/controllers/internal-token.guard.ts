import { Inject, Injectable, type CanActivate, type ExecutionContext } from '@nestjs/common';
import type { Metadata } from '@grpc/grpc-js';
import { InternalToken } from '@tracegate/runtime';
import { BROKER_CONFIG, type BrokerConfig } from '../broker.config.js';
import { BrokerError, BrokerErrorCode } from '../errors.js';

export { INTERNAL_TOKEN_METADATA } from '@tracegate/runtime';

/** Admits only callers that present TRACEGATE_INTERNAL_TOKEN (compared in constant time). */
@Injectable()
export class InternalTokenGuard implements CanActivate {
  private readonly token: InternalToken;

  constructor(@Inject(BROKER_CONFIG) config: BrokerConfig) {
    this.token = new InternalToken(config.internalToken);
  }

  canActivate(context: ExecutionContext): boolean {
    const problem = this.token.problem(context.switchToRpc().getContext<Metadata>(), 'broker');
    if (problem) throw new BrokerError(BrokerErrorCode.Unauthenticated, problem);
    return true;
  }
}
