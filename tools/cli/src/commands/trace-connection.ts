import { status as GrpcStatus, type ServiceError } from '@grpc/grpc-js';
import { SERVICE_PROTOS } from '@tracegate/contracts';
import { grpcClient, INTERNAL_TOKEN_METADATA, type PromiseClient } from '@tracegate/runtime';
import { CommandError, internalToken } from './broker-connection.js';

/** How a trace or grant command proves who it is: an identity's API key, or the internal token (administrators). */
export type TraceCredentials = 'api-key' | 'internal-token';

export interface TraceConnection<T> {
  readonly address: string;
  readonly client: PromiseClient<T>;
}

function auditAddress(environment: Record<string, string | undefined>): string {
  return environment.TRACEGATE_AUDIT_ADDRESS?.trim() || `127.0.0.1:${environment.TRACEGATE_AUDIT_GRPC_PORT?.trim() || '7106'}`;
}

/**
 * TRACEGATE_API_KEY, and TRACEGATE_IDENTITY (the key's name) when set: the audit service finds the
 * name from the key's id otherwise.
 */
export function apiKeyMetadata(environment: Record<string, string | undefined>): Record<string, string> {
  const identity = environment.TRACEGATE_IDENTITY?.trim();
  const apiKey = environment.TRACEGATE_API_KEY?.trim();
  if (!apiKey) throw new CommandError('this command acts as an identity: set TRACEGATE_API_KEY to its API key (the one `tracegate key create` printed)');
  return { 'x-tracegate-api-key': apiKey, ...(identity ? { 'x-tracegate-identity': identity } : {}) };
}

/** A client of one of the audit service's gRPC services (TRACEGATE_AUDIT_ADDRESS, default 127.0.0.1:7106). */
export function traceConnection<T>(service: 'TraceService' | 'ReaderGrantService', credentials: TraceCredentials, environment: Record<string, string | undefined>): TraceConnection<T> {
  const address = auditAddress(environment);
  const metadata = credentials === 'api-key' ? apiKeyMetadata(environment) : { [INTERNAL_TOKEN_METADATA]: internalToken(environment) };
  return { address, client: grpcClient<T>(SERVICE_PROTOS.audit.files[0], `tracegate.audit.v1.${service}`, address, { metadata, deadlineMs: 15_000 }) };
}

/** Calls the audit service and turns a gRPC failure into its sentence for the terminal. */
export async function callTraces<T, R>(connection: TraceConnection<T>, call: (client: PromiseClient<T>) => Promise<R>): Promise<R> {
  try {
    return await call(connection.client);
  } catch (error) {
    const grpc = error as Partial<ServiceError>;
    if (typeof grpc.code !== 'number') throw error;
    // Transport failures only: the service's own UNAVAILABLE (a dependency down) keeps its sentence.
    if (grpc.code === GrpcStatus.UNAVAILABLE && /No connection established|ECONNREFUSED|Connection dropped|Name resolution failed/.test(grpc.details ?? '')) {
      throw new CommandError(`cannot reach the audit service at ${connection.address} (${grpc.details || 'unavailable'}); is tracegate running? Set TRACEGATE_AUDIT_ADDRESS if it runs elsewhere`);
    }
    if (grpc.code === GrpcStatus.DEADLINE_EXCEEDED) throw new CommandError(`the audit service at ${connection.address} did not answer in time; is tracegate running?`);
    throw new CommandError(grpc.details || `the audit service answered ${GrpcStatus[grpc.code] ?? grpc.code}`);
  } finally {
    connection.client.close();
  }
}
