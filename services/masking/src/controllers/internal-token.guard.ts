import { Inject, Injectable, type CanActivate, type ExecutionContext } from '@nestjs/common';
import type { Metadata } from '@grpc/grpc-js';
import { InternalToken } from '@tracegate/runtime';
import { MaskingError, MaskingErrorCode } from '../domain/masking-error.js';
import { MASKING_CONFIG, type MaskingConfig } from '../masking.config.js';

/** Admits only callers that present TRACEGATE_INTERNAL_TOKEN: profiles say what is hidden, and Redact sees raw text. */
@Injectable()
export class InternalTokenGuard implements CanActivate {
  private readonly token: InternalToken;

  constructor(@Inject(MASKING_CONFIG) config: MaskingConfig) {
    this.token = new InternalToken(config.internalToken);
  }

  canActivate(context: ExecutionContext): boolean {
    const problem = this.token.problem(context.switchToRpc().getContext<Metadata>(), 'masking service');
    if (problem) throw new MaskingError(MaskingErrorCode.Unauthenticated, problem);
    return true;
  }
}
