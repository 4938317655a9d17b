import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export class StartupError extends Error {
  override readonly name = 'StartupError';
}

/** The all-in-one's state: embedded PostgreSQL's data, its password, the lock. */
export function dataFolder(env: Record<string, string | undefined> = process.env): string {
  return path.resolve(env.TRACEGATE_HOME ?? '.tracegate');
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * One tracegate per data folder: two would share one PostgreSQL data directory and corrupt it.
 * The lock holds the owner's pid; a lock whose owner is gone (a crash) is taken over.
 */
export function lockDataFolder(folder: string): () => void {
  mkdirSync(folder, { recursive: true, mode: 0o700 });
  const lockPath = path.join(folder, 'tracegate.lock');
  for (let attempt = 0; attempt < 2; attempt += 1) {
    try {
      const fd = openSync(lockPath, 'wx', 0o600);
      writeFileSync(fd, `${process.pid}\n`);
      closeSync(fd);
      return () => {
        if (readPid(lockPath) === process.pid) rmSync(lockPath, { force: true });
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const owner = readPid(lockPath);
      if (owner !== undefined && owner !== process.pid && isAlive(owner)) {
        throw new StartupError(
          `another tracegate (pid ${owner}) is already running on the data folder ${folder}. ` +
            'Stop it first, or give this one its own folder with TRACEGATE_HOME=<folder>.',
        );
      }
      rmSync(lockPath, { force: true }); // stale: its owner died without cleaning up
    }
  }
  throw new StartupError(`could not lock the data folder ${folder}; remove ${lockPath} if no tracegate is running`);
}

function readPid(file: string): number | undefined {
  if (!existsSync(file)) return undefined;
  const pid = Number.parseInt(readFileSync(file, 'utf8').split('\n')[0] ?? '', 10);
  return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
}

export { readPid };
