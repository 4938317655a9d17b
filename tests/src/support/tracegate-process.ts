import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { freePorts, pollUntil } from '@tracegate/test-harness';

export const TRACEGATE_BIN = fileURLToPath(new URL('../../../tools/cli/bin/tracegate.js', import.meta.url));
const SERVICES = ['gateway', 'policy', 'masking', 'broker', 'approvals', 'audit'] as const;

/** Free ports for every service, so the e2e run never collides with a developer's own tracegate. */
export async function isolatedEnvironment(home: string): Promise<Record<string, string>> {
  const ports = (await freePorts(3 + SERVICES.length * 2)).map(String);
  const environment: Record<string, string> = {
    TRACEGATE_HOME: home,
    TRACEGATE_LOG_LEVEL: 'info',
    TRACEGATE_EMBEDDED_POSTGRES_PORT: ports.pop()!,
    TRACEGATE_GATEWAY_POSTGRES_PORT: ports.pop()!,
    TRACEGATE_GATEWAY_SSH_PORT: ports.pop()!,
  };
  for (const service of SERVICES) {
    environment[`TRACEGATE_${service.toUpperCase()}_GRPC_PORT`] = ports.pop()!;
    environment[`TRACEGATE_${service.toUpperCase()}_METRICS_PORT`] = ports.pop()!;
  }
  return environment;
}

export interface CommandResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function childEnvironment(extra: Record<string, string>): NodeJS.ProcessEnv {
  const base = { ...process.env };
  // The e2e run decides these itself; a developer's shell must not leak into it.
  for (const key of Object.keys(base)) if (key.startsWith('TRACEGATE_') || key === 'DATABASE_URL' || key === 'KAFKA_BROKERS') delete base[key];
  return { ...base, ...extra };
}

/** Runs `tracegate <args>` to completion on the same Node as the tests (the pinned Node 24). */
export async function runTracegate(args: readonly string[], environment: Record<string, string>, timeoutMs = 60_000): Promise<CommandResult> {
  const child = spawn(process.execPath, [TRACEGATE_BIN, ...args], { env: childEnvironment(environment), stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const [code] = (await once(child, 'exit')) as [number | null];
  clearTimeout(timer);
  return { code, stdout, stderr };
}

/** `tracegate up` in the background; its output is kept for assertions and failure messages. */
export class TracegateProcess {
  private stdoutText = '';
  private stderrText = '';
  readonly exited: Promise<number | null>;

  private constructor(readonly child: ChildProcess) {
    child.stdout!.on('data', (d: Buffer) => (this.stdoutText += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (this.stderrText += d.toString()));
    this.exited = once(child, 'exit').then(([code]) => code as number | null);
  }

  static start(environment: Record<string, string>): TracegateProcess {
    return new TracegateProcess(spawn(process.execPath, [TRACEGATE_BIN, 'up'], { env: childEnvironment(environment), stdio: ['ignore', 'pipe', 'pipe'] }));
  }

  /**
   * `tracegate up`, waited on until `tracegate status` says every service is serving (or failing
   * fast, with its output, if it exits first). `statusEnvironment` is what the status check runs with.
   */
  static async startHealthy(environment: Record<string, string>, statusEnvironment: Record<string, string> = environment): Promise<TracegateProcess> {
    const tracegate = TracegateProcess.start(environment);
    await pollUntil(
      async () => {
        if (tracegate.child.exitCode !== null) throw new Error(`tracegate up exited:\n${tracegate.stderr}\n${tracegate.stdout.slice(-3000)}`);
        return (await runTracegate(['status'], statusEnvironment)).code === 0;
      },
      { timeoutMs: 120_000, intervalMs: 500, description: 'tracegate to become healthy' },
    );
    return tracegate;
  }

  get stdout(): string {
    return this.stdoutText;
  }
  get stderr(): string {
    return this.stderrText;
  }
  /** Structured log lines (pino JSON) written so far. */
  logLines(): Record<string, unknown>[] {
    return this.stdoutText
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  }

  async terminate(signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
    return this.exited;
  }
}
