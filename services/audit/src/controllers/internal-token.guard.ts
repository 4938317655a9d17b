import { createHash, timingSafeEqual } from 'node:crypto';
import { Inject, Injectable, type CanActivate, type ExecutionContext } from '@nestjs/common';
import type { Metadata } from '@grpc/grpc-js';
import { AUDIT_CONFIG, type AuditConfig } from '../audit.config.js';
import { AuditError, AuditErrorCode } from '../errors.js';

/** The gRPC metadata key service-to-service callers (the CLI, other services) put the internal token in. */
export const INTERNAL_TOKEN_METADATA = 'x-tracegate-internal-token';

/**
 * Admits only callers that present TRACEGATE_INTERNAL_TOKEN; compares in constant time.
 * Reader grants scoped by target or identity come later and narrow this further.
 */
@Injectable()
export class InternalTokenGuard implements CanActivate {
  private readonly expected: Buffer;

  constructor(@Inject(AUDIT_CONFIG) config: AuditConfig) {
    this.expected = digest(config.internalToken);
  }

  canActivate(context: ExecutionContext): boolean {
    const metadata = context.switchToRpc().getContext<Metadata>();
    const presented = metadata?.get(INTERNAL_TOKEN_METADATA)[0];
    // Both sides are hashed to the same length first, so the comparison time does not depend on the token's length.
    if (typeof presented !== 'string' || !timingSafeEqual(digest(presented), this.expected)) {
      throw new AuditError(
        AuditErrorCode.Unauthenticated,
        `this call needs the internal token in the gRPC metadata '${INTERNAL_TOKEN_METADATA}' (the value of TRACEGATE_INTERNAL_TOKEN); it was ${typeof presented === 'string' ? 'wrong' : 'missing'}`,
      );
    }
    return true;
  }
}

function digest(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}
