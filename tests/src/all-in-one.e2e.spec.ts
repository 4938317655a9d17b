import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { pollUntil } from '@tracegate/test-harness';
import { isolatedEnvironment, runTracegate, TracegateProcess } from './support/tracegate-process.js';

const SIX = ['gateway', 'policy', 'masking', 'broker', 'approvals', 'audit'];

async function waitHealthy(environment: Record<string, string>, proc: TracegateProcess) {
  return pollUntil(
    async () => {
      if (proc.child.exitCode !== null) throw new Error(`tracegate up exited with ${proc.child.exitCode}:\n${proc.stderr}\n${proc.stdout.slice(-3000)}`);
      const result = await runTracegate(['status'], environment);
      return result.code === 0 ? result : undefined;
    },
    { timeoutMs: 120_000, intervalMs: 500, description: 'all six services to report SERVING' },
  );
}

function embeddedDatabaseUrl(home: string, environment: Record<string, string>): string {
  const password = readFileSync(path.join(home, 'postgres.password'), 'utf8').trim();
  return `postgresql://tracegate:${password}@127.0.0.1:${environment.TRACEGATE_EMBEDDED_POSTGRES_PORT}/tracegate`;
}

describe('npm start: the all-in-one on embedded PostgreSQL', () => {
  let home: string;
  let environment: Record<string, string>;
  let first: TracegateProcess | undefined;
  const started: TracegateProcess[] = [];
  const start = () => {
    const proc = TracegateProcess.start(environment);
    started.push(proc);
    return proc;
  };

  before(async () => {
    home = mkdtempSync(path.join(tmpdir(), 'tracegate-e2e-'));
    environment = await isolatedEnvironment(home);
  });

  after(async () => {
    // A failed assertion must not leave a tracegate (and its PostgreSQL) running.
    for (const proc of started) await proc.terminate('SIGTERM');
    rmSync(home, { recursive: true, force: true });
  });

  it('starts six healthy services from a cold data folder, and status reports each', async () => {
    first = start();
    const status = await waitHealthy(environment, first);
    for (const service of SIX) {
      assert.match(status.stdout, new RegExp(`^${service}\\s+127\\.0\\.0\\.1:${environment[`TRACEGATE_${service.toUpperCase()}_GRPC_PORT`]}\\s+SERVING$`, 'm'));
    }
    assert.match(status.stdout, /6 of 6 services healthy/);
    const json = await runTracegate(['status', '--json'], environment);
    assert.deepEqual(
      (JSON.parse(json.stdout) as { service: string; status: string }[]).map((s) => [s.service, s.status]).sort(),
      SIX.map((s) => [s, 'SERVING']).sort(),
    );
  });

  it('logs structured JSON and serves Prometheus metrics for each service', async () => {
    const lines = first!.logLines();
    assert.ok(lines.some((l) => l.msg === 'embedded PostgreSQL is up' && l.fresh === true), 'a cold start initialises PostgreSQL');
    for (const service of SIX) assert.ok(lines.some((l) => l.msg === `${service} is serving`), `${service} logged that it is serving`);
    const response = await fetch(`http://127.0.0.1:${environment.TRACEGATE_POLICY_METRICS_PORT}/metrics`);
    assert.equal(response.status, 200);
    const body = await response.text();
    assert.match(body, /^tracegate_service_up\{service="policy"\} 1$/m);
  });

  it('refuses a second instance on the same data folder, naming the running one', async () => {
    const other = await isolatedEnvironment(home);
    const second = await runTracegate(['up'], other);
    assert.equal(second.code, 1);
    assert.match(second.stderr, new RegExp(`another tracegate \\(pid ${first!.child.pid}\\) is already running on the data folder ${home.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
  });

  it('names the port and the service when a port is already in use', async () => {
    const otherHome = mkdtempSync(path.join(tmpdir(), 'tracegate-e2e-port-'));
    try {
      const other = { ...(await isolatedEnvironment(otherHome)), TRACEGATE_AUDIT_GRPC_PORT: environment.TRACEGATE_AUDIT_GRPC_PORT! };
      const result = await runTracegate(['up'], other);
      assert.equal(result.code, 1);
      assert.match(result.stderr, new RegExp(`audit \\(gRPC\\) cannot listen on 127\\.0\\.0\\.1:${environment.TRACEGATE_AUDIT_GRPC_PORT}: the port is already in use.*TRACEGATE_AUDIT_GRPC_PORT`));
    } finally {
      rmSync(otherHome, { recursive: true, force: true });
    }
  });

  it('stops on SIGTERM with exit code 0, after which status reports the services unreachable', async () => {
    const database = new pg.Client({ connectionString: embeddedDatabaseUrl(home, environment) });
    await database.connect();
    await database.query('CREATE TABLE e2e_restart_marker (note text)');
    await database.query('INSERT INTO e2e_restart_marker VALUES ($1)', ['kept across restarts']);
    await database.end();

    assert.equal(await first!.terminate('SIGTERM'), 0, `exit code after SIGTERM; stderr: ${first!.stderr}`);
    const lines = first!.logLines().map((l) => l.msg);
    assert.ok(lines.indexOf('gateway stopped') < lines.indexOf('broker stopped'), 'the gateway, which calls the others, stops first');
    assert.ok(lines.indexOf('broker stopped') < lines.indexOf('event log flushed and closed'), 'the event log is flushed after every service stopped');
    const status = await runTracegate(['status'], environment);
    assert.equal(status.code, 1);
    assert.match(status.stdout, /0 of 6 services healthy/);
  });

  it('restarts on the same data folder and keeps the data', async () => {
    first = start();
    await waitHealthy(environment, first);
    assert.ok(first.logLines().some((l) => l.msg === 'embedded PostgreSQL is up' && l.fresh === false));
    const database = new pg.Client({ connectionString: embeddedDatabaseUrl(home, environment) });
    await database.connect();
    const { rows } = await database.query<{ note: string }>('SELECT note FROM e2e_restart_marker');
    await database.end();
    assert.deepEqual(rows, [{ note: 'kept across restarts' }]);
    assert.equal(await first.terminate('SIGTERM'), 0, `exit code after SIGTERM; stderr: ${first.stderr}\nlast output: ${first.stdout.slice(-1500)}`);
  });

  it('refuses bad configuration with one message naming every bad variable', async () => {
    const result = await runTracegate(['up'], { ...environment, TRACEGATE_LOG_LEVEL: 'loud', TRACEGATE_POLICY_GRPC_PORT: 'abc', KAFKA_BROKERS: 'not a broker' });
    assert.equal(result.code, 1);
    assert.match(result.stderr, /tracegate cannot start: 3 configuration values are invalid:/);
    assert.match(result.stderr, /TRACEGATE_LOG_LEVEL: 'loud' is not one of trace, debug, info, warn, error, fatal, silent/);
    assert.match(result.stderr, /TRACEGATE_POLICY_GRPC_PORT: 'abc' is not a port number/);
    assert.match(result.stderr, /KAFKA_BROKERS: 'not a broker' is not a comma-separated list of host:port/);
  });
});
