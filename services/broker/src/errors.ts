import { status as GrpcStatus } from '@grpc/grpc-js';

export enum BrokerErrorCode {
  TargetNotFound = 'TARGET_NOT_FOUND',
  TargetExists = 'TARGET_EXISTS',
  KeyNotFound = 'KEY_NOT_FOUND',
  KeyExists = 'KEY_EXISTS',
  KeyRevoked = 'KEY_REVOKED',
  SshKeyNotFound = 'SSH_KEY_NOT_FOUND',
  SshKeyExists = 'SSH_KEY_EXISTS',
  LeaseNotFound = 'LEASE_NOT_FOUND',
  InvalidArgument = 'INVALID_ARGUMENT',
  Unauthenticated = 'UNAUTHENTICATED',
  DecryptionFailed = 'DECRYPTION_FAILED',
  EventLogUnavailable = 'EVENT_LOG_UNAVAILABLE',
}

/**
 * The broker's one error class. Its message is shown to callers as is, so it is a sentence that
 * says what happened and what to do — and it never carries a secret, a key hash or key material.
 */
export class BrokerError extends Error {
  override readonly name = 'BrokerError';
  constructor(
    readonly code: BrokerErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }

  static targetNotFound(name: string): BrokerError {
    return new BrokerError(
      BrokerErrorCode.TargetNotFound,
      `target '${name}' is not registered; run \`tracegate target add ${name} …\` to register it, or \`tracegate target list\` to see the registered ones`,
    );
  }

  static invalidArgument(field: string, problem: string): BrokerError {
    return new BrokerError(BrokerErrorCode.InvalidArgument, `${field} ${problem}`);
  }
}

import { assertUnreachable } from '@tracegate/runtime';

export { assertUnreachable };

/** The gRPC status for each code: exhaustive, so a new code cannot ship unmapped. */
export function grpcStatusOf(code: BrokerErrorCode): GrpcStatus {
  switch (code) {
    case BrokerErrorCode.TargetNotFound:
    case BrokerErrorCode.KeyNotFound:
    case BrokerErrorCode.SshKeyNotFound:
    case BrokerErrorCode.LeaseNotFound:
      return GrpcStatus.NOT_FOUND;
    case BrokerErrorCode.TargetExists:
    case BrokerErrorCode.KeyExists:
    case BrokerErrorCode.SshKeyExists:
      return GrpcStatus.ALREADY_EXISTS;
    case BrokerErrorCode.KeyRevoked:
      return GrpcStatus.FAILED_PRECONDITION;
    case BrokerErrorCode.InvalidArgument:
      return GrpcStatus.INVALID_ARGUMENT;
    case BrokerErrorCode.Unauthenticated:
      return GrpcStatus.UNAUTHENTICATED;
    case BrokerErrorCode.DecryptionFailed:
      return GrpcStatus.INTERNAL;
    case BrokerErrorCode.EventLogUnavailable:
      return GrpcStatus.UNAVAILABLE;
    default:
      return assertUnreachable(code);
  }
}

/** What a gRPC caller receives for any error: a BrokerError's own sentence, anything else a generic one. */
export function toGrpcError(error: unknown): { code: GrpcStatus; message: string } {
  if (error instanceof BrokerError) return { code: grpcStatusOf(error.code), message: error.message };
  // Unexpected errors (a database failure…) are logged by the filter; their text may hold
  // internals, so the caller gets a sentence instead of it.
  return { code: GrpcStatus.INTERNAL, message: 'the broker failed to handle the request; its log has the details' };
}
