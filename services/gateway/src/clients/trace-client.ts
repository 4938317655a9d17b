import { status as GrpcStatus, type ServiceError } from '@grpc/grpc-js';
import { auditV1, SERVICE_PROTOS } from '@tracegate/contracts';
import { grpcClient, INTERNAL_TOKEN_METADATA, type PromiseClient } from '@tracegate/runtime';
import { TraceRefusal, type TraceFeatures, type TraceRegistry, type TraceSite, type VerifiedIdentity } from '../postgres/ports.js';

/** Answers that are about the trace, not the service: the statement is refused with the service's own sentence. */
const REFUSALS = new Set<number>([GrpcStatus.NOT_FOUND, GrpcStatus.PERMISSION_DENIED, GrpcStatus.INVALID_ARGUMENT, GrpcStatus.RESOURCE_EXHAUSTED, GrpcStatus.FAILED_PRECONDITION]);

/** The audit service's TraceService: checks attached trace ids and stores inline traces (masked there). */
export class TraceClient implements TraceRegistry {
  private readonly traces: PromiseClient<auditV1.TraceServiceClient>;

  constructor(address: string, internalToken: string) {
    this.traces = grpcClient<auditV1.TraceServiceClient>(SERVICE_PROTOS.audit.files[0], 'tracegate.audit.v1.TraceService', address, {
      metadata: { [INTERNAL_TOKEN_METADATA]: internalToken },
      deadlineMs: 10_000,
    });
  }

  async resolve(traceId: string, identity: VerifiedIdentity, where: TraceSite): Promise<TraceFeatures> {
    const response = await refusing(this.traces.resolveTrace({ traceId, identityId: identity.id, sessionId: where.sessionId, target: where.target }));
    return featuresOf(response.features);
  }

  async submitInline(traceJson: string, identity: VerifiedIdentity, where: TraceSite): Promise<{ traceId: string; features: TraceFeatures }> {
    const response = await refusing(this.traces.submit({ traceJson, identityId: identity.id, identityName: identity.name, sessionId: where.sessionId, target: where.target } as auditV1.SubmitRequest));
    return { traceId: response.id, features: featuresOf(response.features) };
  }

  close(): void {
    this.traces.close();
  }
}

async function refusing<T>(call: Promise<T>): Promise<T> {
  try {
    return await call;
  } catch (error) {
    const e = error as ServiceError;
    if (e.code !== undefined && REFUSALS.has(e.code)) throw new TraceRefusal(e.details || e.message);
    throw error;
  }
}

function featuresOf(features: auditV1.TraceFeatures | undefined): TraceFeatures {
  return { confidence: features?.confidence ?? 0, model: features?.model ?? '', tags: features?.tags ?? [] };
}
