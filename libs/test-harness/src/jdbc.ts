import { execFile, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rename, rm } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';

/** pgJDBC, the driver Java applications (and JDBC-style tools) use. */
export const PGJDBC_VERSION = '42.7.8';

export const JDK_MISSING = 'the JDBC test runs a Java program and needs a JDK 17 or newer (java and javac): apt-get install openjdk-17-jdk-headless';

/**
 * The PostgreSQL JDBC driver jar: fetched from Maven Central with Maven once, then from
 * `$TRACEGATE_CACHE_DIR/pgjdbc-<version>` (default under ~/.cache/tracegate).
 */
export async function postgresJdbcJar(): Promise<string> {
  const root = process.env.TRACEGATE_CACHE_DIR || join(homedir(), '.cache', 'tracegate');
  const dir = join(root, `pgjdbc-${PGJDBC_VERSION}`);
  const jar = join(dir, `postgresql-${PGJDBC_VERSION}.jar`);
  if (existsSync(jar)) return jar;
  if (spawnSync('mvn', ['-v'], { stdio: 'ignore' }).status !== 0) throw new Error('the JDBC test needs Maven to download pgJDBC once: apt-get install maven');
  await mkdir(root, { recursive: true });
  const staging = await mkdtemp(join(root, '.staging-pgjdbc-'));
  try {
    await new Promise<void>((resolve, reject) =>
      execFile('mvn', ['-q', '-B', 'dependency:copy', `-Dartifact=org.postgresql:postgresql:${PGJDBC_VERSION}`, `-DoutputDirectory=${staging}`], { cwd: staging, timeout: 10 * 60_000 }, (error, stdout) =>
        error ? reject(new Error(`Maven could not fetch pgJDBC ${PGJDBC_VERSION} from Maven Central: ${error.message}\n${stdout.slice(-2000)}`)) : resolve(),
      ),
    );
    if (!(await readdir(staging)).includes(`postgresql-${PGJDBC_VERSION}.jar`)) throw new Error(`Maven finished but fetched no postgresql-${PGJDBC_VERSION}.jar`);
    try {
      await rename(staging, dir);
    } catch (error) {
      // Another process got there first.
      if (!existsSync(jar)) throw new Error(`could not move pgJDBC into ${dir}`, { cause: error });
    }
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
  return jar;
}

/** Whether `java` can run a single source file (it needs the JDK's compiler, not only a JRE). */
export function jdkAvailable(): boolean {
  return spawnSync('javac', ['-version'], { stdio: 'ignore' }).status === 0;
}
