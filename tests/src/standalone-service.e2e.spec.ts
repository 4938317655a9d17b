import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { JAVA_MISSING, freePort, pollUntil, startKafka, startPostgres } from '@tracegate/test-harness';
import { runTracegate } from './support/tracegate-process.js';

const policyMain = fileURLToPath(new URL('../../services/policy/dist/main.js', import.meta.url));

describe('a service on its own (the distributed mode)', () => {
  let postgres: Awaited<ReturnType<typeof startPostgres>>;
  let databaseUrl: string;

  before(async () => {
    postgres = await startPostgres();
    databaseUrl = await postgres.createDatabase();
  });
  after(async () => {
    await postgres?.stop();
  });

  it('starts policy alone with DATABASE_URL, serves health, and exits 0 on SIGTERM', async () => {
    const grpcPort = await freePort();
    const environment = {
      ...process.env,
      DATABASE_URL: databaseUrl,
      // Every policy call must carry it (the service refuses to start without one).
      TRACEGATE_INTERNAL_TOKEN: 'standalone-e2e-internal-token-0123456789abcdef',
      TRACEGATE_POLICY_GRPC_PORT: String(grpcPort),
      TRACEGATE_POLICY_METRICS_PORT: String(await freePort()),
    };
    const child = spawn(process.execPath, [policyMain], { env: environment, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const exited = once(child, 'exit');
    try {
      // `tracegate status` asks all six; only policy answers here.
      await pollUntil(
        async () => {
          if (child.exitCode !== null) throw new Error(`policy exited early:\n${output}`);
          const status = await runTracegate(['status', '--json'], { TRACEGATE_POLICY_GRPC_PORT: String(grpcPort) });
          return (JSON.parse(status.stdout) as { service: string; status: string }[]).find((s) => s.service === 'policy')?.status === 'SERVING';
        },
        { timeoutMs: 60_000, intervalMs: 300, description: 'policy to serve health' },
      );
      assert.match(output, /"msg":"policy is serving"/);
    } finally {
      child.kill('SIGTERM');
    }
    const [code] = await exited;
    assert.equal(code, 0, output);
  });

  it('refuses to start alone without DATABASE_URL, saying what to set', async () => {
    const child = spawn(process.execPath, [policyMain], {
      env: { PATH: process.env.PATH, TRACEGATE_INTERNAL_TOKEN: 'standalone-e2e-internal-token-0123456789abcdef' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const [code] = await once(child, 'exit');
    assert.equal(code, 1);
    assert.match(stderr, /DATABASE_URL: is required to run a service on its own/);
  });
});

describe('tracegate version', () => {
  it('prints the version and the Node it runs on (the pinned 24)', async () => {
    const result = await runTracegate(['version'], {});
    assert.equal(result.code, 0);
    assert.match(result.stdout, /^tracegate \d+\.\d+\.\d+ \(node 24\.\d+\.\d+\)$/m);
  });
});

describe('test prerequisites', () => {
  it('a missing Java fails the Kafka harness with what to install, not a silent skip', async () => {
    await assert.rejects(startKafka({ javaPath: '/nonexistent/java' }), (error: Error) => error.message === JAVA_MISSING);
  });
});
