import { Catch, Inject, type ArgumentsHost, type RpcExceptionFilter } from '@nestjs/common';
import { throwError, type Observable } from 'rxjs';
import { SERVICE_CONTEXT, type ServiceContext } from '@tracegate/runtime';
import { ApprovalError, toGrpcError } from '../errors.js';

/** Every error leaving an approvals RPC passes here: ApprovalErrors keep their sentence, others are logged and hidden. */
@Catch()
export class ApprovalErrorFilter implements RpcExceptionFilter<unknown> {
  constructor(@Inject(SERVICE_CONTEXT) private readonly context: ServiceContext) {}

  catch(exception: unknown, _host: ArgumentsHost): Observable<never> {
    if (!(exception instanceof ApprovalError)) this.context.logger.error({ err: exception }, 'an approvals RPC failed unexpectedly');
    const { code, message } = toGrpcError(exception);
    return throwError(() => ({ code, message, details: message }));
  }
}
