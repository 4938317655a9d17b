import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from './free-port.js';

/**
 * A real Apache Kafka broker for integration tests: a single KRaft node (broker and controller in
 * one JVM) run from the `kafka_2.13` jars on Maven Central with the machine's Java. Nothing is
 * mocked; there is no Docker here, so this is the path CI runs.
 *
 * The jars are resolved once with Maven (`libs/test-harness/kafka/pom.xml`) into a cache folder and
 * reused afterwards without Maven. Missing prerequisites fail with what to install: never a skip.
 */

export const KAFKA_VERSION = '4.1.1';

export const JAVA_MISSING = 'Kafka tests need Java 17 or newer: apt-get install openjdk-17-jre-headless';
export const MAVEN_MISSING =
  'Kafka tests need Maven to download the Kafka broker once (no cached jars were found): apt-get install maven';

const POM_PATH = fileURLToPath(new URL('../kafka/pom.xml', import.meta.url));
const MARKER = '.resolved';
const LOG_LIMIT = 256 * 1024;
const BIND_ATTEMPTS = 3;
const STARTED_LINE = /Kafka Server started/;

export interface KafkaJars {
  /** The folder holding the broker's jars (and the marker file). */
  readonly dir: string;
  /** Every jar, absolute paths. */
  readonly jars: readonly string[];
  /** A Java class path naming them all (`<dir>/*`). */
  readonly classpath: string;
}

/**
 * Where resolved jars are kept: `$TRACEGATE_CACHE_DIR/kafka-4.1.1`, by default
 * `~/.cache/tracegate/kafka-4.1.1`.
 */
export function kafkaCacheDir(): string {
  const root = process.env.TRACEGATE_CACHE_DIR || join(homedir(), '.cache', 'tracegate');
  return join(root, `kafka-${KAFKA_VERSION}`);
}

/**
 * The broker's jars: resolved with Maven on the first call on this machine, from the cache after
 * that. The cache folder is keyed by a hash of the pom, so changing the pom resolves again.
 * Concurrent callers (parallel test files) are safe: each resolves into its own temporary folder and
 * renames it into place; the first rename wins and the others use the winner's jars.
 */
export async function resolveKafkaJars(): Promise<KafkaJars> {
  const pom = readFileSync(POM_PATH);
  const pomHash = createHash('sha256').update(pom).digest('hex').slice(0, 16);
  const cache = kafkaCacheDir();
  const dir = join(cache, `jars-${pomHash}`);
  const cached = await readResolved(dir);
  if (cached) return cached;

  if (!commandExists('mvn', ['-v'])) throw new Error(MAVEN_MISSING);
  await mkdir(cache, { recursive: true });
  const staging = await mkdtemp(join(cache, '.staging-'));
  try {
    const jarsDir = join(staging, 'jars');
    const result = await run(
      'mvn',
      ['-q', '-B', '-f', POM_PATH, 'dependency:copy-dependencies', `-DoutputDirectory=${jarsDir}`],
      { cwd: staging, timeoutMs: 15 * 60_000 },
    );
    if (result.code !== 0) {
      throw new Error(
        `Maven could not resolve the Kafka ${KAFKA_VERSION} broker jars from ${POM_PATH} (exit ${result.code}); ` +
          `is Maven Central reachable? Its output ended with:\n${tail(result.output, 40)}`,
      );
    }
    const jars = (await readdir(jarsDir)).filter((f) => f.endsWith('.jar'));
    if (!jars.some((f) => f.startsWith('kafka_2.13-'))) {
      throw new Error(`Maven finished but ${jarsDir} holds no kafka_2.13 jar: ${jars.join(', ') || 'nothing'}`);
    }
    await writeFile(join(jarsDir, MARKER), `${jars.sort().join('\n')}\n`);
    try {
      await rename(jarsDir, dir);
    } catch (error) {
      // Another process got there first; its folder is complete if it carries the marker.
      const winner = await readResolved(dir);
      if (winner) return winner;
      throw new Error(`could not move the resolved Kafka jars into ${dir}`, { cause: error });
    }
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
  const resolved = await readResolved(dir);
  if (!resolved) throw new Error(`the Kafka jar cache ${dir} is incomplete right after resolving it`);
  return resolved;
}

async function readResolved(dir: string): Promise<KafkaJars | undefined> {
  const marker = join(dir, MARKER);
  if (!existsSync(marker)) return undefined;
  const names = readFileSync(marker, 'utf8').split('\n').filter(Boolean);
  const jars = names.map((name) => join(dir, name));
  if (names.length === 0 || !jars.every((jar) => existsSync(jar))) return undefined;
  return { dir, jars, classpath: join(dir, '*') };
}

export interface KafkaOptions {
  /** How long to wait for the broker to say it started. Default 90 s. */
  readonly startTimeoutMs?: number;
  /** How long `stop()`/`restart()` wait for a graceful shutdown before SIGKILL. Default 30 s. */
  readonly stopTimeoutMs?: number;
  /** Maximum JVM heap. Default `512m`. */
  readonly heap?: string;
  /** Extra or overriding `server.properties` entries. */
  readonly properties?: Readonly<Record<string, string | number | boolean>>;
  /** The `java` executable. Default: `java` on `PATH`. */
  readonly javaPath?: string;
}

export interface KafkaBroker {
  /** `127.0.0.1:<port>`, for a client's bootstrap servers. */
  readonly brokers: string;
  readonly port: number;
  readonly controllerPort: number;
  /** The temp directory holding `server.properties`, `log4j2.properties` and the log dir `data/`. */
  readonly dir: string;
  /** How long the last (re)start took until the broker reported it had started, in ms. */
  readonly lastStartMs: number;
  /** What the broker has printed (WARN and above, plus its start line), the most recent 256 KiB. */
  logs(): string;
  /** Whether the broker process is running. */
  isRunning(): boolean;
  /** SIGKILL, as in a crash: nothing is flushed or shut down cleanly. The data stays for `restart()`. */
  kill(): Promise<void>;
  /**
   * SIGSTOP: the broker hangs with its connections open (as in a long GC pause or a network
   * partition), so requests time out instead of being refused. `resume()` continues it.
   */
  pause(): void;
  /** SIGCONT after `pause()`. */
  resume(): void;
  /**
   * Starts the broker again on the same ports with the same log dir (after `kill()`, or after a
   * graceful shutdown if it is still running), and waits until it has started.
   */
  restart(): Promise<void>;
  /** Shuts the broker down gracefully (SIGKILL after the stop timeout) and removes its directory. Idempotent. */
  stop(): Promise<void>;
}

/** Brokers not yet stopped: killed, and their directories removed, if the test process exits first. */
const live = new Set<{ child?: ChildProcess; dir: string }>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const entry of live) {
      entry.child?.kill('SIGKILL');
      rmSync(entry.dir, { recursive: true, force: true });
    }
  });
}

/**
 * Starts a single-node KRaft Kafka broker on free loopback ports, in a fresh temp directory.
 * Resolves once the broker reports "Kafka Server started" (the broker has registered with its
 * controller and is unfenced), so clients can produce and consume right away.
 */
export async function startKafka(options: KafkaOptions = {}): Promise<KafkaBroker> {
  const java = options.javaPath ?? 'java';
  checkJava(java);
  const { classpath } = await resolveKafkaJars();
  const startTimeoutMs = options.startTimeoutMs ?? 90_000;
  const stopTimeoutMs = options.stopTimeoutMs ?? 30_000;
  const heap = options.heap ?? '512m';

  const dir = await mkdtemp(join(tmpdir(), 'tracegate-kafka-'));
  const entry: { child?: ChildProcess; dir: string } = { dir };
  installExitHook();
  live.add(entry);

  const dataDir = join(dir, 'data');
  const serverProperties = join(dir, 'server.properties');
  const log4jProperties = join(dir, 'log4j2.properties');
  const clusterId = randomBytes(16).toString('base64url');
  let output = '';
  let port = 0;
  let controllerPort = 0;
  let lastStartMs = 0;
  let exited: Promise<string> = Promise.resolve('not started');
  let stopped = false;

  const append = (chunk: Buffer | string) => {
    output += chunk.toString();
    if (output.length > LOG_LIMIT) output = output.slice(output.length - LOG_LIMIT);
  };

  const writeProperties = async () => {
    const props: Record<string, string | number | boolean> = {
      'process.roles': 'broker,controller',
      'node.id': 1,
      'controller.quorum.voters': `1@127.0.0.1:${controllerPort}`,
      listeners: `PLAINTEXT://127.0.0.1:${port},CONTROLLER://127.0.0.1:${controllerPort}`,
      'advertised.listeners': `PLAINTEXT://127.0.0.1:${port}`,
      'listener.security.protocol.map': 'PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT',
      'controller.listener.names': 'CONTROLLER',
      'inter.broker.listener.name': 'PLAINTEXT',
      'log.dirs': dataDir,
      'auto.create.topics.enable': false,
      'num.partitions': 1,
      'default.replication.factor': 1,
      'min.insync.replicas': 1,
      'offsets.topic.replication.factor': 1,
      // Fewer partitions for the offsets topic: the first consumer group joins faster.
      'offsets.topic.num.partitions': 5,
      'transaction.state.log.replication.factor': 1,
      'transaction.state.log.min.isr': 1,
      'share.coordinator.state.topic.replication.factor': 1,
      'share.coordinator.state.topic.min.isr': 1,
      'group.initial.rebalance.delay.ms': 0,
      // After a kill the restarted broker waits for its previous registration's session to expire
      // before it is unfenced: 3 s instead of the default 9 s keeps restart() quick.
      'broker.session.timeout.ms': 3000,
      'broker.heartbeat.interval.ms': 500,
      ...options.properties,
    };
    const text = Object.entries(props)
      .map(([k, v]) => `${k}=${String(v)}`)
      .join('\n');
    await writeFile(serverProperties, `# written by @tracegate/test-harness startKafka()\n${text}\n`);
  };

  const launch = async (): Promise<void> => {
    const started = Date.now();
    const child = spawn(
      java,
      [
        `-Xmx${heap}`,
        '-Xms64m',
        '-Djava.awt.headless=true',
        `-Dlog4j2.configurationFile=${log4jProperties}`,
        '-cp',
        classpath,
        'kafka.Kafka',
        serverProperties,
      ],
      { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    entry.child = child;
    const exitedNow = new Promise<string>((resolve) => {
      child.once('error', (error) => resolve(`could not be started: ${error.message}`));
      child.once('exit', (code, signal) => resolve(signal ? `signal ${signal}` : `code ${code}`));
    });
    exited = exitedNow;
    let ready = false;
    let resolveReady!: () => void;
    const readyPromise = new Promise<void>((resolve) => (resolveReady = resolve));
    let pending = '';
    const onData = (chunk: Buffer) => {
      append(chunk);
      if (ready) return;
      pending = (pending + chunk.toString()).slice(-4096);
      if (STARTED_LINE.test(pending)) {
        ready = true;
        resolveReady();
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    // Once started, the broker must not keep the test process alive (the exit hook kills it then).
    const detach = () => {
      child.unref();
      for (const stream of [child.stdout, child.stderr]) (stream as unknown as { unref?: () => void }).unref?.();
    };

    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), startTimeoutMs);
    });
    const outcome = await Promise.race([
      readyPromise.then(() => 'ready' as const),
      exitedNow.then((reason) => ({ exited: reason })),
      timedOut,
    ]);
    clearTimeout(timer);
    if (outcome === 'ready') {
      lastStartMs = Date.now() - started;
      detach();
      return;
    }
    if (outcome === 'timeout') {
      child.kill('SIGKILL');
      await exitedNow;
      throw new KafkaStartError(
        `Kafka did not report "Kafka Server started" within ${startTimeoutMs} ms (broker 127.0.0.1:${port}, ` +
          `controller 127.0.0.1:${controllerPort}, dir ${dir}). ${brokerOutput(output)}`,
        false,
      );
    }
    throw new KafkaStartError(
      `Kafka exited (${outcome.exited}) before it started (broker 127.0.0.1:${port}, controller 127.0.0.1:${controllerPort}, ` +
        `dir ${dir}). ${brokerOutput(output)}`,
      /BindException|Address already in use/.test(output),
    );
  };

  const terminate = async (signal: 'SIGTERM' | 'SIGKILL'): Promise<void> => {
    const child = entry.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    child.ref(); // keep the test process alive until the broker has exited
    child.kill(signal);
    if (signal === 'SIGTERM') child.kill('SIGCONT'); // a paused broker cannot shut down
    if (signal === 'SIGKILL') {
      await exited;
      return;
    }
    let timer: NodeJS.Timeout | undefined;
    const gone = await Promise.race([
      exited.then(() => true),
      new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), stopTimeoutMs))),
    ]);
    clearTimeout(timer);
    if (!gone) {
      child.kill('SIGKILL');
      await exited;
    }
  };

  try {
    await mkdir(dataDir);
    await writeFile(log4jProperties, LOG4J2_PROPERTIES);
    for (let attempt = 1; ; attempt += 1) {
      port = await freePort();
      controllerPort = await freePort();
      while (controllerPort === port) controllerPort = await freePort();
      await writeProperties();
      if (attempt === 1) await formatStorage(java, classpath, clusterId, serverProperties, dir);
      try {
        await launch();
        break;
      } catch (error) {
        // Another process took a port between freePort() and the broker binding it: new ports.
        if (error instanceof KafkaStartError && error.portTaken && attempt < BIND_ATTEMPTS) {
          output = '';
          continue;
        }
        throw error;
      }
    }
  } catch (error) {
    await terminate('SIGKILL');
    live.delete(entry);
    await rm(dir, { recursive: true, force: true });
    throw error;
  }

  return {
    brokers: `127.0.0.1:${port}`,
    port,
    controllerPort,
    dir,
    get lastStartMs() {
      return lastStartMs;
    },
    logs: () => output,
    isRunning: () => !!entry.child && entry.child.exitCode === null && entry.child.signalCode === null,
    async kill() {
      await terminate('SIGKILL');
    },
    pause() {
      if (!entry.child || entry.child.exitCode !== null || entry.child.signalCode !== null) throw new Error('the Kafka broker is not running');
      entry.child.kill('SIGSTOP');
    },
    resume() {
      entry.child?.kill('SIGCONT');
    },
    async restart() {
      if (stopped) throw new Error(`the Kafka broker in ${dir} was stopped (and its data removed): it cannot be restarted`);
      await terminate('SIGTERM');
      await launch();
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await terminate('SIGTERM');
      live.delete(entry);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

class KafkaStartError extends Error {
  override readonly name = 'KafkaStartError';
  constructor(
    message: string,
    readonly portTaken: boolean,
  ) {
    super(message);
  }
}

/**
 * Kafka 4.x logs through SLF4J; the pom adds the log4j2 binding (log4j-slf4j-impl) next to the
 * log4j-core Kafka already ships. WARN and above go to stdout, plus the one INFO line that says the
 * server started, which is how {@link startKafka} knows it is ready.
 */
const LOG4J2_PROPERTIES = `# written by @tracegate/test-harness startKafka()
status = warn
name = tracegate-test-kafka
appender.stdout.type = Console
appender.stdout.name = STDOUT
appender.stdout.layout.type = PatternLayout
appender.stdout.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.stdout.ref = STDOUT
logger.started.name = kafka.server.KafkaRaftServer
logger.started.level = INFO
`;

async function formatStorage(java: string, classpath: string, clusterId: string, serverProperties: string, dir: string): Promise<void> {
  const result = await run(
    java,
    [`-Dlog4j2.configurationFile=${join(dir, 'log4j2.properties')}`, '-cp', classpath, 'kafka.tools.StorageTool', 'format', '-t', clusterId, '-c', serverProperties],
    { cwd: dir, timeoutMs: 60_000 },
  );
  if (result.code !== 0) {
    throw new Error(`kafka.tools.StorageTool format failed (exit ${result.code}) in ${dir}:\n${tail(result.output, 40)}`);
  }
}

function checkJava(java: string): void {
  const probe = spawnSync(java, ['-version'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) throw new Error(JAVA_MISSING);
  const text = `${probe.stderr ?? ''}${probe.stdout ?? ''}`;
  const match = /version "(\d+)(?:\.(\d+))?/.exec(text);
  if (!match) return; // an unusual banner: let the broker itself complain if it cannot run
  const major = Number(match[1]) === 1 ? Number(match[2]) : Number(match[1]);
  if (major < 17) throw new Error(`${JAVA_MISSING} (found Java ${major} at '${java}')`);
}

function commandExists(command: string, args: readonly string[]): boolean {
  const probe = spawnSync(command, args, { stdio: 'ignore' });
  return !probe.error;
}

function run(command: string, args: readonly string[], options: { cwd: string; timeoutMs: number }): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: options.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const collect = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.length > LOG_LIMIT) output = output.slice(output.length - LOG_LIMIT);
    };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    const timer = setTimeout(() => {
      output += `\n[killed after ${options.timeoutMs} ms]`;
      child.kill('SIGKILL');
    }, options.timeoutMs);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

function brokerOutput(output: string): string {
  return output.trim() === ''
    ? 'It printed nothing (it logs WARN and above only).'
    : `Its output ended with:\n${tail(output, 40)}`;
}

function tail(text: string, lines: number): string {
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}
