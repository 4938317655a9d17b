import { createLogger, env, loadProcessConfig, startServices, runUntilSignalled, type RunningProcess } from '@tracegate/runtime';
import { dataFolder, lockDataFolder } from './data-folder.js';
import { startEmbeddedPostgres } from './embedded-postgres.js';
import { localSecrets } from './local-secrets.js';
import { ALL_SERVICES } from './services.js';

const EMBEDDED_SCHEMA = {
  embeddedPostgresPort: env.port('TRACEGATE_EMBEDDED_POSTGRES_PORT', 15433),
};

/**
 * The all-in-one: every service in this process, each on its own loopback gRPC port. Without
 * DATABASE_URL it brings its own PostgreSQL (data under TRACEGATE_HOME, default ./.tracegate),
 * which also carries the event log unless KAFKA_BROKERS names a Kafka cluster.
 */
export async function startAllInOne(given: Record<string, string | undefined> = process.env): Promise<RunningProcess> {
  const folder = dataFolder(given);
  const unlock = lockDataFolder(folder);
  try {
    const environment = { ...given, ...(await localSecrets(folder, given)) };
    // Everything is validated before anything starts, so one message names every bad variable.
    const { host, extra } = loadProcessConfig('tracegate', ALL_SERVICES, environment, EMBEDDED_SCHEMA);
    const config = { ...host, ...extra };
    const logger = createLogger('tracegate', config.logLevel);
    let databaseUrl = config.databaseUrl;
    let stopDatabase: (() => Promise<void>) | undefined;
    if (!databaseUrl) {
      const embedded = await startEmbeddedPostgres(folder, config.embeddedPostgresPort, logger);
      databaseUrl = embedded.url;
      stopDatabase = () => embedded.stop();
    }
    try {
      return await startServices(ALL_SERVICES, {
        component: 'tracegate',
        databaseUrl,
        env: environment,
        afterStop: async () => {
          await stopDatabase?.();
          unlock();
        },
      });
    } catch (error) {
      await stopDatabase?.();
      throw error;
    }
  } catch (error) {
    unlock();
    throw error;
  }
}

export async function up(): Promise<void> {
  await runUntilSignalled(() => startAllInOne());
}
