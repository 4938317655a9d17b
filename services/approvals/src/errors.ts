import { status as GrpcStatus } from '@grpc/grpc-js';
import { assertUnreachable } from '@tracegate/runtime';

export enum ApprovalErrorCode {
  RequestNotFound = 'REQUEST_NOT_FOUND',
  RequestExists = 'REQUEST_EXISTS',
  AlreadyFinal = 'ALREADY_FINAL',
  AlreadyApproved = 'ALREADY_APPROVED',
  SelfDecision = 'SELF_DECISION',
  NotInReviewerGroup = 'NOT_IN_REVIEWER_GROUP',
  NotAReviewer = 'NOT_A_REVIEWER',
  NotTheRequester = 'NOT_THE_REQUESTER',
  InvalidArgument = 'INVALID_ARGUMENT',
  Unauthenticated = 'UNAUTHENTICATED',
  IdentityServiceUnavailable = 'IDENTITY_SERVICE_UNAVAILABLE',
  EventLogUnavailable = 'EVENT_LOG_UNAVAILABLE',
}

/**
 * The approvals service's one error class. Its message is shown to callers as is (over gRPC, in the
 * CLI, as a Slack ephemeral message), so it is a sentence that says what happened and what to do,
 * and never carries an API key or a Slack secret.
 */
export class ApprovalError extends Error {
  override readonly name = 'ApprovalError';
  constructor(
    readonly code: ApprovalErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }

  static notFound(id: string): ApprovalError {
    return new ApprovalError(
      ApprovalErrorCode.RequestNotFound,
      `no approval request has id '${id.slice(0, 80)}'; run \`tracegate approvals list\` to see the open ones`,
    );
  }

  static invalidArgument(field: string, problem: string): ApprovalError {
    return new ApprovalError(ApprovalErrorCode.InvalidArgument, `${field} ${problem}`);
  }
}

/** The gRPC status for each code: exhaustive, so a new code cannot ship unmapped. */
export function grpcStatusOf(code: ApprovalErrorCode): GrpcStatus {
  switch (code) {
    case ApprovalErrorCode.RequestNotFound:
      return GrpcStatus.NOT_FOUND;
    case ApprovalErrorCode.RequestExists:
    case ApprovalErrorCode.AlreadyApproved:
      return GrpcStatus.ALREADY_EXISTS;
    case ApprovalErrorCode.AlreadyFinal:
      return GrpcStatus.FAILED_PRECONDITION;
    case ApprovalErrorCode.SelfDecision:
    case ApprovalErrorCode.NotInReviewerGroup:
    case ApprovalErrorCode.NotAReviewer:
    case ApprovalErrorCode.NotTheRequester:
      return GrpcStatus.PERMISSION_DENIED;
    case ApprovalErrorCode.InvalidArgument:
      return GrpcStatus.INVALID_ARGUMENT;
    case ApprovalErrorCode.Unauthenticated:
      return GrpcStatus.UNAUTHENTICATED;
    case ApprovalErrorCode.IdentityServiceUnavailable:
    case ApprovalErrorCode.EventLogUnavailable:
      return GrpcStatus.UNAVAILABLE;
    default:
      return assertUnreachable(code);
  }
}

/** What a gRPC caller receives for any error: an ApprovalError's own sentence, anything else a generic one. */
export function toGrpcError(error: unknown): { code: GrpcStatus; message: string } {
  if (error instanceof ApprovalError) return { code: grpcStatusOf(error.code), message: error.message };
  // Unexpected errors (a database failure…) are logged by the filter; their text may hold
  // internals, so the caller gets a sentence instead of it.
  return { code: GrpcStatus.INTERNAL, message: 'the approvals service failed to handle the request; its log has the details' };
}
