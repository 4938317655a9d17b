import { credentials, loadPackageDefinition, type ServiceError } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { HEALTH_PROTO, PROTO_LOADER_OPTIONS, PROTO_ROOT, healthV1 } from '@tracegate/contracts';
import { env, loadConfig, portSchema, envPrefix } from '@tracegate/runtime';
import { ALL_SERVICES } from './services.js';

export interface ServiceHealth {
  readonly service: string;
  readonly address: string;
  readonly status: 'SERVING' | 'NOT_SERVING' | 'UNKNOWN' | 'UNREACHABLE';
  readonly detail: string;
}

type HealthClient = {
  check(
    request: healthV1.HealthCheckRequest,
    options: { deadline: number },
    callback: (error: ServiceError | null, response?: healthV1.HealthCheckResponse) => void,
  ): void;
  close(): void;
};

function healthClientConstructor(): new (address: string, creds: ReturnType<typeof credentials.createInsecure>) => HealthClient {
  const definition = loadSync(HEALTH_PROTO.file, { ...PROTO_LOADER_OPTIONS, includeDirs: [PROTO_ROOT] });
  const root = loadPackageDefinition(definition) as unknown as { grpc: { health: { v1: { Health: new (...a: never[]) => HealthClient } } } };
  return root.grpc.health.v1.Health as never;
}

/** Asks every service's grpc.health.v1 endpoint, in parallel, with a short deadline. */
export async function checkHealth(environment: Record<string, string | undefined> = process.env, timeoutMs = 2000): Promise<ServiceHealth[]> {
  const Health = healthClientConstructor();
  const { host } = loadConfig('tracegate status', { host: env.string('TRACEGATE_HOST', { fallback: environment.TRACEGATE_BIND_HOST ?? '127.0.0.1' }) }, environment);
  return Promise.all(
    ALL_SERVICES.map(async (def) => {
      const { grpcPort } = loadConfig('tracegate status', portSchema(def), environment);
      const address = `${host === '0.0.0.0' ? '127.0.0.1' : host}:${grpcPort}`;
      const client = new Health(address, credentials.createInsecure());
      try {
        const response = await new Promise<healthV1.HealthCheckResponse>((resolve, reject) =>
          client.check({ service: '' }, { deadline: Date.now() + timeoutMs }, (error, res) => (error ? reject(error) : resolve(res!))),
        );
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
