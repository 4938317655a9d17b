import { createHash, timingSafeEqual } from 'node:crypto';
import type { Metadata } from '@grpc/grpc-js';

/** The gRPC metadata key service-to-service callers (the gateway, the CLI) put the internal token in. */
export const INTERNAL_TOKEN_METADATA = 'x-tracegate-internal-token';

/**
 * TRACEGATE_INTERNAL_TOKEN, as a service checks it on each call. Both sides are hashed to the
 * same length first, so the constant-time comparison does not leak the token's length either.
 */
export class InternalToken {
  private readonly expected: Buffer;

  constructor(token: string) {
    this.expected = digest(token);
  }

  /** undefined when the call carries the token; otherwise the sentence to answer UNAUTHENTICATED with. */
  problem(metadata: Metadata | undefined, service: string): string | undefined {
    const presented = metadata?.get(INTERNAL_TOKEN_METADATA)[0];
    if (typeof presented === 'string' && timingSafeEqual(digest(presented), this.expected)) return undefined;
    return `this call needs the ${service}'s internal token in the gRPC metadata '${INTERNAL_TOKEN_METADATA}' (the value of TRACEGATE_INTERNAL_TOKEN); it was ${typeof presented === 'string' ? 'wrong' : 'missing'}`;
  }
}

function digest(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}
