import type { ServiceError } from '@grpc/grpc-js';
import { HEALTH_PROTO, healthV1 } from '@tracegate/contracts';
import { env, envPrefix, grpcClient, loadConfig, portSchema } from '@tracegate/runtime';
import { ALL_SERVICES } from './services.js';

export interface ServiceHealth {
  readonly service: string;
  readonly address: string;
  readonly status: 'SERVING' | 'NOT_SERVING' | 'UNKNOWN' | 'UNREACHABLE';
  readonly detail: string;
}

/** Asks every service's grpc.health.v1 endpoint, in parallel, with a short deadline. */
export async function checkHealth(environment: Record<string, string | undefined> = process.env, timeoutMs = 2000): Promise<ServiceHealth[]> {
  const { host } = loadConfig('tracegate status', { host: env.string('TRACEGATE_HOST', { fallback: environment.TRACEGATE_BIND_HOST ?? '127.0.0.1' }) }, environment);
  return Promise.all(
    ALL_SERVICES.map(async (def) => {
      const { grpcPort } = loadConfig('tracegate status', portSchema(def), environment);
      const address = `${host === '0.0.0.0' ? '127.0.0.1' : host}:${grpcPort}`;
      const client = grpcClient<healthV1.HealthClient>(HEALTH_PROTO.file, 'grpc.health.v1.Health', address, { deadlineMs: timeoutMs });
      try {
        const response = await client.check({ service: '' });
        const status = response.status === healthV1.HealthCheckResponse_ServingStatus.SERVING ? 'SERVING' : response.status === healthV1.HealthCheckResponse_ServingStatus.NOT_SERVING ? 'NOT_SERVING' : 'UNKNOWN';
        return { service: def.name, address, status, detail: '' } as const;
      } catch (error) {
        const detail = (error as ServiceError).details || (error as Error).message;
        return { service: def.name, address, status: 'UNREACHABLE', detail: `${detail} (is tracegate running? port set by ${envPrefix(def.name)}_GRPC_PORT)` } as const;
      } finally {
        client.close();
      }
    }),
  );
}

export async function status(json: boolean): Promise<number> {
  const results = await checkHealth();
  if (json) {
    process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
  } else {
    const width = Math.max(...results.map((r) => r.service.length));
    for (const r of results) {
      process.stdout.write(`${r.service.padEnd(width)}  ${r.address.padEnd(21)}  ${r.status}${r.detail ? `  ${r.detail}` : ''}\n`);
    }
  }
  const healthy = results.filter((r) => r.status === 'SERVING').length;
  if (!json) process.stdout.write(`${healthy} of ${results.length} services healthy\n`);
  return healthy === results.length ? 0 : 1;
}
