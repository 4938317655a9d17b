import type { EventLog } from '@tracegate/events';
import { ConfigError } from './config.js';
import { createLogger, type Logger } from './logger.js';
import { openEventLog } from './event-log-factory.js';
import { PortInUseError } from './listen.js';
import { loadProcessConfig, startService, type HostConfig, type RunningService, type ServiceDefinition } from './service-host.js';

export interface RunOptions {
  /** Names the process in messages: "tracegate", "tracegate policy". */
  readonly component: string;
  /** The database for state and, without Kafka, for the event log. Overrides DATABASE_URL. */
  readonly databaseUrl?: string;
  readonly env?: Record<string, string | undefined>;
  /** Called after everything has stopped and the event log is flushed (the all-in-one stops PostgreSQL here). */
  readonly afterStop?: () => Promise<void>;
}

export interface RunningProcess {
  readonly services: readonly RunningService[];
  readonly eventLog: EventLog;
  readonly logger: Logger;
  readonly host: HostConfig;
  /** Stops every service (the last started first), then flushes and closes the event log. */
  stop(): Promise<void>;
}

/**
 * Starts services in one process, in the order given (dependencies first). They share one
 * logger and one event log; each still serves its own gRPC port, so calls between them take the
 * same path as in the distributed mode.
 */
export async function startServices(defs: readonly ServiceDefinition[], options: RunOptions): Promise<RunningProcess> {
  const { host, services: settings } = loadProcessConfig(options.component, defs, options.env);
  const logger = createLogger(options.component, host.logLevel);
  const databaseUrl = options.databaseUrl ?? host.databaseUrl;
  if (!databaseUrl) {
    throw new ConfigError(options.component, [
      {
        env: 'DATABASE_URL',
        problem: 'is required to run a service on its own (postgresql://user:password@host:5432/tracegate); `npm start` runs every service with an embedded PostgreSQL instead',
      },
    ]);
  }
  const eventLog = await openEventLog({ databaseUrl, kafkaBrokers: host.kafkaBrokers, clientId: options.component, logger });
  const running: RunningService[] = [];
  const stopAll = async () => {
    for (const service of [...running].reverse()) await service.close();
    // Flushed last: services finishing in-flight work may still append.
    await eventLog.close();
    logger.info('event log flushed and closed');
    await options.afterStop?.();
  };
  try {
    for (const [index, def] of defs.entries()) {
      running.push(
        await startService(def, settings.get(def.name)!, host, { logger, eventLog, databaseUrl, processMetrics: index === 0, env: options.env ?? process.env }),
      );
    }
  } catch (error) {
    await stopAll().catch((stopError: unknown) => logger.error({ err: stopError }, 'cleanup after a failed start failed too'));
    throw error;
  }
  let stopping: Promise<void> | undefined;
  return { services: running, eventLog, logger, host, stop: () => (stopping ??= stopAll()) };
}

/**
 * Runs until SIGTERM or SIGINT, then shuts down gracefully and exits 0. A second signal exits at
 * once. Start-up failures print one readable message and exit 1.
 */
export async function runUntilSignalled(start: () => Promise<RunningProcess>): Promise<void> {
  let proc: RunningProcess;
  try {
    proc = await start();
  } catch (error) {
    exitWithStartupError(error);
  }
  let signalled = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (signalled) {
      proc.logger.warn({ signal }, 'second signal: exiting without waiting');
      process.exit(130);
    }
    signalled = true;
    proc.logger.info({ signal }, 'shutting down');
    proc.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        proc.logger.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}

export function exitWithStartupError(error: unknown): never {
  if (error instanceof ConfigError || error instanceof PortInUseError || (error instanceof Error && error.name === 'StartupError')) {
    process.stderr.write(`${error.message}\n`);
  } else {
    process.stderr.write(`tracegate failed to start: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  }
  process.exit(1);
}

/** `node services/<name>/dist/main.js`: one service, its own process (the distributed mode). */
export async function runStandalone(def: ServiceDefinition): Promise<void> {
  await runUntilSignalled(() => startServices([def], { component: `tracegate ${def.name}` }));
}
