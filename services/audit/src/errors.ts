import { status as GrpcStatus } from '@grpc/grpc-js';

export enum AuditErrorCode {
  SessionNotFound = 'SESSION_NOT_FOUND',
  InvalidArgument = 'INVALID_ARGUMENT',
  Unauthenticated = 'UNAUTHENTICATED',
  NotImplemented = 'NOT_IMPLEMENTED',
  /** A trace or reader grant id that does not exist. */
  NotFound = 'NOT_FOUND',
  /** The caller is known but not allowed: a foreign trace, no (unexpired) reader grant. */
  PermissionDenied = 'PERMISSION_DENIED',
  /** A trace above TRACEGATE_TRACE_MAX_BYTES. */
  TooLarge = 'TOO_LARGE',
  /** A service this call needs (broker, masking, the event log) did not answer; nothing was changed. */
  Unavailable = 'UNAVAILABLE',
  /** The call conflicts with one in progress (a second projection rebuild). */
  Conflict = 'CONFLICT',
}

/**
 * The audit service's one error class. Its message is shown to callers as is, so it is a sentence
 * that says what happened and what to do.
 */
export class AuditError extends Error {
  override readonly name = 'AuditError';
  constructor(
    readonly code: AuditErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }

  static sessionNotFound(id: string): AuditError {
    return new AuditError(
      AuditErrorCode.SessionNotFound,
      `no session has id '${id.slice(0, 80)}'; run \`tracegate sessions list\` to see the recorded sessions (a session that just started may take a moment to appear)`,
    );
  }

  static invalidArgument(field: string, problem: string): AuditError {
    return new AuditError(AuditErrorCode.InvalidArgument, `${field} ${problem}`);
  }
}

import { assertUnreachable } from '@tracegate/runtime';

export { assertUnreachable };

/** The gRPC status for each code: exhaustive, so a new code cannot ship unmapped. */
export function grpcStatusOf(code: AuditErrorCode): GrpcStatus {
  switch (code) {
    case AuditErrorCode.SessionNotFound:
      return GrpcStatus.NOT_FOUND;
    case AuditErrorCode.InvalidArgument:
      return GrpcStatus.INVALID_ARGUMENT;
    case AuditErrorCode.Unauthenticated:
      return GrpcStatus.UNAUTHENTICATED;
    case AuditErrorCode.NotImplemented:
      return GrpcStatus.UNIMPLEMENTED;
    case AuditErrorCode.NotFound:
      return GrpcStatus.NOT_FOUND;
    case AuditErrorCode.PermissionDenied:
      return GrpcStatus.PERMISSION_DENIED;
    case AuditErrorCode.TooLarge:
      return GrpcStatus.RESOURCE_EXHAUSTED;
    case AuditErrorCode.Unavailable:
      return GrpcStatus.UNAVAILABLE;
    case AuditErrorCode.Conflict:
      return GrpcStatus.FAILED_PRECONDITION;
    default:
      return assertUnreachable(code);
  }
}

/** What a gRPC caller receives for any error: an AuditError's own sentence, anything else a generic one. */
export function toGrpcError(error: unknown): { code: GrpcStatus; message: string } {
  if (error instanceof AuditError) return { code: grpcStatusOf(error.code), message: error.message };
  // Unexpected errors (a database failure…) are logged by the filter; their text may hold
  // internals, so the caller gets a sentence instead of it.
  return { code: GrpcStatus.INTERNAL, message: 'the audit service failed to handle the request; its log has the details' };
}
