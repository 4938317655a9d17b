import 'reflect-metadata';
import { Global, Module, type DynamicModule, type INestMicroservice } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Transport, type GrpcOptions } from '@nestjs/microservices';
import type { Registry } from 'prom-client';
import { Gauge } from 'prom-client';
import { HEALTH_PROTO, PROTO_LOADER_OPTIONS, PROTO_ROOT, SERVICE_PROTOS, healthV1, type ServiceName } from '@tracegate/contracts';
import type { EventLog } from '@tracegate/events';
import { env, loadConfig, ConfigError, type ConfigField, type ConfigOf, type ConfigSchema } from './config.js';
import { HealthController, HealthState, SERVICE_NAMES_TOKEN } from './health.js';
import { assertPortFree } from './listen.js';
import { NestPinoLogger, type Logger } from './logger.js';
import { MetricsServer } from './metrics-server.js';

/** What every service gets from its host, whether it runs alone or in the all-in-one. */
export interface ServiceContext {
  readonly name: ServiceName;
  readonly logger: Logger;
  readonly metrics: Registry;
  readonly eventLog: EventLog;
  /** The service's own PostgreSQL database. */
  readonly databaseUrl: string;
  /** The environment the configuration was read from (defaults that follow other settings read it). */
  readonly env: Readonly<Record<string, string | undefined>>;
}

export const SERVICE_CONTEXT = Symbol('SERVICE_CONTEXT');
export const EVENT_LOG = Symbol('EVENT_LOG');
export const SERVICE_CONFIG = Symbol('SERVICE_CONFIG');

export interface ServiceDefinition<S extends ConfigSchema = ConfigSchema> {
  readonly name: ServiceName;
  /** Default gRPC and metrics ports; each can be moved with TRACEGATE_<NAME>_GRPC_PORT / _METRICS_PORT. */
  readonly defaultPorts: { readonly grpc: number; readonly metrics: number };
  /** Fully-qualified gRPC services it serves, each reported by the health service. */
  readonly grpcServices: readonly string[];
  /** The service's own settings beyond the common ones. */
  readonly configSchema: S;
  /** The service's Nest module, given its context and validated settings. */
  module(context: ServiceContext, config: ConfigOf<S>): DynamicModule;
}

export function envPrefix(name: ServiceName): string {
  return `TRACEGATE_${name.toUpperCase()}`;
}

export function portSchema(def: Pick<ServiceDefinition, 'name' | 'defaultPorts'>) {
  const prefix = envPrefix(def.name);
  return {
    grpcPort: env.port(`${prefix}_GRPC_PORT`, def.defaultPorts.grpc),
    metricsPort: env.port(`${prefix}_METRICS_PORT`, def.defaultPorts.metrics),
  };
}

/** Settings shared by every service in a process. */
export const HOST_SCHEMA = {
  bindHost: env.string('TRACEGATE_BIND_HOST', { fallback: '127.0.0.1', pattern: /^[A-Za-z0-9.:\-[\]]+$/, describe: 'a host name or IP address' }),
  logLevel: env.oneOf('TRACEGATE_LOG_LEVEL', ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const, 'info'),
  shutdownGraceMs: env.int('TRACEGATE_SHUTDOWN_GRACE_MS', { fallback: 10_000, min: 0, max: 600_000 }),
  databaseUrl: env.url('DATABASE_URL', { protocols: ['postgres:', 'postgresql:'], optional: true }),
  kafkaBrokers: env.hostPorts('KAFKA_BROKERS'),
} satisfies Record<string, ConfigField<unknown>>;

export type HostConfig = ConfigOf<typeof HOST_SCHEMA>;

export interface ServiceSettings {
  readonly ports: { grpc: number; metrics: number };
  readonly own: Record<string, unknown>;
}

/**
 * Validates the host's settings and every service's at once, so one message names every bad
 * variable across the whole process.
 */
export function loadProcessConfig<E extends ConfigSchema = Record<never, never>>(
  component: string,
  defs: readonly ServiceDefinition[],
  source: Record<string, string | undefined> = process.env,
  extraSchema?: E,
): { host: HostConfig; services: Map<ServiceName, ServiceSettings>; extra: ConfigOf<E> } {
  const problems: ConfigError['problems'][number][] = [];
  const attempt = <T>(fn: () => T): T | undefined => {
    try {
      return fn();
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      problems.push(...error.problems);
      return undefined;
    }
  };
  const host = attempt(() => loadConfig(component, HOST_SCHEMA, source));
  const extra = attempt(() => loadConfig(component, extraSchema ?? ({} as E), source));
  const services = new Map<ServiceName, ServiceSettings>();
  const seenPorts = new Map<number, string>();
  for (const def of defs) {
    const ports = attempt(() => loadConfig(component, portSchema(def), source));
    const own = attempt(() => loadConfig(component, def.configSchema, source));
    if (ports) {
      for (const [kind, port] of [['GRPC', ports.grpcPort], ['METRICS', ports.metricsPort]] as const) {
        const owner = seenPorts.get(port);
        const envName = `${envPrefix(def.name)}_${kind}_PORT`;
        if (owner) problems.push({ env: envName, problem: `port ${port} is already taken by ${owner}; give each service its own ports` });
        seenPorts.set(port, envName);
      }
    }
    if (ports && own) services.set(def.name, { ports: { grpc: ports.grpcPort, metrics: ports.metricsPort }, own });
  }
  if (problems.length > 0 || !host || !extra) throw new ConfigError(component, problems);
  return { host, services, extra };
}

@Global()
@Module({})
class ServiceRuntimeModule {
  static forService(context: ServiceContext, config: unknown, grpcServices: readonly string[]): DynamicModule {
    return {
      module: ServiceRuntimeModule,
      controllers: [HealthController],
      providers: [
        { provide: SERVICE_CONTEXT, useValue: context },
        { provide: EVENT_LOG, useValue: context.eventLog },
        { provide: SERVICE_CONFIG, useValue: config },
        { provide: SERVICE_NAMES_TOKEN, useValue: grpcServices },
        HealthState,
      ],
      exports: [SERVICE_CONTEXT, EVENT_LOG, SERVICE_CONFIG, HealthState],
    };
  }
}

export interface RunningService {
  readonly name: ServiceName;
  readonly grpcAddress: string;
  readonly metricsAddress: string;
  /** Stops taking work, finishes what is in flight (up to the grace period), then stops. */
  close(): Promise<void>;
}

export async function startService(
  def: ServiceDefinition,
  settings: ServiceSettings,
  host: HostConfig,
  shared: { logger: Logger; eventLog: EventLog; databaseUrl: string; processMetrics: boolean; env: Readonly<Record<string, string | undefined>> },
): Promise<RunningService> {
  const logger = shared.logger.child({ service: def.name });
  const prefix = envPrefix(def.name);
  await assertPortFree(host.bindHost, settings.ports.grpc, `${def.name} (gRPC)`, `${prefix}_GRPC_PORT`);

  const metricsServer = new MetricsServer(def.name, shared.processMetrics);
  const context: ServiceContext = {
    name: def.name,
    logger,
    metrics: metricsServer.registry,
    eventLog: shared.eventLog,
    databaseUrl: shared.databaseUrl,
    env: shared.env,
  };
  const proto = SERVICE_PROTOS[def.name];
  const grpcOptions: GrpcOptions = {
    transport: Transport.GRPC,
    options: {
      url: `${host.bindHost}:${settings.ports.grpc}`,
      package: [proto.package, HEALTH_PROTO.package],
      protoPath: [...proto.files, HEALTH_PROTO.file],
      loader: { ...PROTO_LOADER_OPTIONS, includeDirs: [PROTO_ROOT] },
      gracefulShutdown: true,
    },
  };
  @Module({ imports: [ServiceRuntimeModule.forService(context, settings.own, def.grpcServices), def.module(context, settings.own as never)] })
  class ServiceRootModule {}

  const app: INestMicroservice = await NestFactory.createMicroservice(ServiceRootModule, {
    ...grpcOptions,
    logger: new NestPinoLogger(logger),
    abortOnError: false,
  });
  await app.listen();
  const metricsAddress = await metricsServer.listen(host.bindHost, settings.ports.metrics, `${prefix}_METRICS_PORT`);
  new Gauge({
    name: 'tracegate_service_up',
    help: '1 while the service is serving; 0 while it shuts down.',
    registers: [metricsServer.registry],
  }).set(1);

  const health = app.get(HealthState);
  health.setAll(healthV1.HealthCheckResponse_ServingStatus.SERVING);
  const grpcAddress = `${host.bindHost}:${settings.ports.grpc}`;
  logger.info({ grpc: grpcAddress, metrics: metricsAddress }, `${def.name} is serving`);

  let closing: Promise<void> | undefined;
  return {
    name: def.name,
    grpcAddress,
    metricsAddress,
    close() {
      closing ??= (async () => {
        health.setAll(healthV1.HealthCheckResponse_ServingStatus.NOT_SERVING);
        health.endWatches();
        logger.info(`${def.name} is shutting down: finishing in-flight work`);
        // app.close() runs the modules' shutdown hooks (which finish in-flight work) and
        // gRPC's tryShutdown, which waits for calls in progress. The grace period bounds both.
        const closed = app.close();
        const timedOut = await Promise.race([
          closed.then(() => false),
          delay(host.shutdownGraceMs).then(() => true),
        ]);
        if (timedOut) logger.warn({ graceMs: host.shutdownGraceMs }, `${def.name} did not finish in-flight work within the grace period; stopping anyway`);
        await metricsServer.close();
        logger.info(`${def.name} stopped`);
      })();
      return closing;
    },
  };
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
