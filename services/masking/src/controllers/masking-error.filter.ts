import { Catch, Inject, type ArgumentsHost, type RpcExceptionFilter } from '@nestjs/common';
import { status as GrpcStatus } from '@grpc/grpc-js';
import { throwError, type Observable } from 'rxjs';
import { SERVICE_CONTEXT, type ServiceContext } from '@tracegate/runtime';
import { MaskingError, MaskingErrorCode, assertUnreachable } from '../domain/masking-error.js';

/** The gRPC status for each code: exhaustive, so a new code cannot ship unmapped. */
export function grpcStatusOf(code: MaskingErrorCode): GrpcStatus {
  switch (code) {
    case MaskingErrorCode.InvalidRequest:
      return GrpcStatus.INVALID_ARGUMENT;
    case MaskingErrorCode.ProfileNotFound:
      return GrpcStatus.NOT_FOUND;
    case MaskingErrorCode.InvalidProfile:
      return GrpcStatus.INVALID_ARGUMENT;
    case MaskingErrorCode.ProfilesUnreadable:
      return GrpcStatus.FAILED_PRECONDITION;
    case MaskingErrorCode.Unauthenticated:
      return GrpcStatus.UNAUTHENTICATED;
    case MaskingErrorCode.EventLogUnavailable:
      return GrpcStatus.UNAVAILABLE;
    default:
      return assertUnreachable(code);
  }
}

/** What a gRPC caller receives: a MaskingError's own sentence; anything else a generic one (the text may hold secrets). */
export function toGrpcError(error: unknown): { code: GrpcStatus; message: string } {
  if (error instanceof MaskingError) return { code: grpcStatusOf(error.code), message: error.message };
  return { code: GrpcStatus.INTERNAL, message: 'the masking service failed; its log has the details' };
}

@Catch()
export class MaskingErrorFilter implements RpcExceptionFilter<unknown> {
  constructor(@Inject(SERVICE_CONTEXT) private readonly context: ServiceContext) {}

  catch(exception: unknown, _host: ArgumentsHost): Observable<never> {
    // Only the error's name and stack are logged: its message could quote the text being redacted.
    if (!(exception instanceof MaskingError)) this.context.logger.error({ err: { name: (exception as Error)?.name, stack: (exception as Error)?.stack?.split('\n').slice(1).join('\n') } }, 'a masking RPC failed unexpectedly');
    const { code, message } = toGrpcError(exception);
    return throwError(() => ({ code, message, details: message }));
  }
}
