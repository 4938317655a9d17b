import { Catch, Inject, type ArgumentsHost, type RpcExceptionFilter } from '@nestjs/common';
import { status as GrpcStatus } from '@grpc/grpc-js';
import { throwError, type Observable } from 'rxjs';
import { SERVICE_CONTEXT, type ServiceContext } from '@tracegate/runtime';
import { PolicyError, PolicyErrorCode, assertUnreachable } from '../domain/policy-error.js';

/** The gRPC status for each code: exhaustive, so a new code cannot ship unmapped. */
export function grpcStatusOf(code: PolicyErrorCode): GrpcStatus {
  switch (code) {
    case PolicyErrorCode.InvalidRequest:
      return GrpcStatus.INVALID_ARGUMENT;
    case PolicyErrorCode.InvalidDocument:
      return GrpcStatus.INVALID_ARGUMENT;
    case PolicyErrorCode.DocumentUnreadable:
      return GrpcStatus.FAILED_PRECONDITION;
    case PolicyErrorCode.Unauthenticated:
      return GrpcStatus.UNAUTHENTICATED;
    case PolicyErrorCode.EventLogUnavailable:
      return GrpcStatus.UNAVAILABLE;
    default:
      return assertUnreachable(code);
  }
}

/** What a gRPC caller receives for any error: a PolicyError's own sentence, anything else a generic one. */
export function toGrpcError(error: unknown): { code: GrpcStatus; message: string } {
  if (error instanceof PolicyError) return { code: grpcStatusOf(error.code), message: error.message };
  return { code: GrpcStatus.INTERNAL, message: 'the policy service failed to decide; its log has the details' };
}

/** Every error leaving a policy RPC passes here: PolicyErrors keep their sentence, others are logged and hidden. */
@Catch()
export class PolicyErrorFilter implements RpcExceptionFilter<unknown> {
  constructor(@Inject(SERVICE_CONTEXT) private readonly context: ServiceContext) {}

  catch(exception: unknown, _host: ArgumentsHost): Observable<never> {
    if (!(exception instanceof PolicyError)) this.context.logger.error({ err: exception }, 'a policy RPC failed unexpectedly');
    const { code, message } = toGrpcError(exception);
    return throwError(() => ({ code, message, details: message }));
  }
}
