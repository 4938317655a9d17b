import { Controller, UseFilters } from '@nestjs/common';
import type { Metadata } from '@grpc/grpc-js';
import { auditV1 } from '@tracegate/contracts';
import { AuditErrorFilter } from '../../controllers/audit-error.filter.js';
import { AuditError, AuditErrorCode } from '../../errors.js';
import { TraceRegistry } from '../services/trace-registry.js';
import { TraceCallers } from './trace-callers.js';

/** TraceService. Each RPC authenticates its own way (see proto/tracegate/audit/v1/audit.proto). */
@Controller()
@UseFilters(AuditErrorFilter)
@auditV1.TraceServiceControllerMethods()
export class TraceController implements auditV1.TraceServiceController {
  constructor(
    private readonly registry: TraceRegistry,
    private readonly callers: TraceCallers,
  ) {}

  async submit(request: auditV1.SubmitRequest, metadata?: Metadata): Promise<auditV1.SubmitResponse> {
    return this.registry.submit(await this.callers.identify(metadata), request);
  }

  async getTrace(request: auditV1.GetTraceRequest, metadata?: Metadata): Promise<auditV1.GetTraceResponse> {
    const caller = await this.callers.identify(metadata);
    if (caller.kind !== 'identity') {
      throw new AuditError(
        AuditErrorCode.PermissionDenied,
        "reading a trace needs a reader's own API key (metadata 'x-tracegate-identity' and 'x-tracegate-api-key') and a reader grant for it; the internal token does not read traces",
      );
    }
    return this.registry.read(caller, request.id);
  }

  resolveTrace(request: auditV1.ResolveTraceRequest, metadata?: Metadata): Promise<auditV1.ResolveTraceResponse> {
    this.callers.requireInternal(metadata, 'ResolveTrace');
    return this.registry.resolve(request);
  }
}
