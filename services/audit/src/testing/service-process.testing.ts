import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

// Another service runs as its own process, as in the distributed mode: a service never imports
// another service's code (module boundaries), so the audit service's tests start the broker and
// the approvals service from their built entry points.

export interface ServiceProcess {
  stop(): Promise<void>;
}

/**
 * Starts `services/<name>/dist/main.js` with `env` and waits until `ready` answers true (60 s at
 * most); its stderr is kept for the error when it exits or never serves.
 */
export async function startServiceProcess(name: 'broker' | 'approvals', env: Record<string, string>, ready: () => Promise<boolean>): Promise<ServiceProcess> {
  const main = fileURLToPath(new URL(`../../../${name}/dist/main.js`, import.meta.url));
  if (!existsSync(main)) throw new Error(`${main} is missing: build it first (npx tsc -b services/${name})`);
  const child: ChildProcess = spawn(process.execPath, [main], { env: { ...process.env, KAFKA_BROKERS: '', TRACEGATE_LOG_LEVEL: 'warn', ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
  };
  const deadline = Date.now() + 60_000;
  while (!(await ready().catch(() => false))) {
    if (child.exitCode !== null) throw new Error(`the ${name} process exited with ${child.exitCode}: ${stderr}`);
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`the ${name} process did not serve within 60 s: ${stderr}`);
    }
    await sleep(100);
  }
  return { stop };
}
