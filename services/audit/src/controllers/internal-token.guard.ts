import { Inject, Injectable, type CanActivate, type ExecutionContext } from '@nestjs/common';
import type { Metadata } from '@grpc/grpc-js';
import { InternalToken } from '@tracegate/runtime';
import { AUDIT_CONFIG, type AuditConfig } from '../audit.config.js';
import { AuditError, AuditErrorCode } from '../errors.js';

export { INTERNAL_TOKEN_METADATA } from '@tracegate/runtime';

/** Admits only callers that present TRACEGATE_INTERNAL_TOKEN (compared in constant time). */
@Injectable()
export class InternalTokenGuard implements CanActivate {
  private readonly token: InternalToken;

  constructor(@Inject(AUDIT_CONFIG) config: AuditConfig) {
    this.token = new InternalToken(config.internalToken);
  }

  canActivate(context: ExecutionContext): boolean {
    const problem = this.token.problem(context.switchToRpc().getContext<Metadata>(), 'audit');
    if (problem) throw new AuditError(AuditErrorCode.Unauthenticated, problem);
    return true;
  }
}
