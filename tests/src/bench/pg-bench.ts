/**
 * `npm run bench:pg`: pgbench -S against the same PostgreSQL directly, through tracegate (policy
 * and events on, nothing masked), through PgBouncer (session pooling) and through a bare Node TCP
 * pipe (no inspection: the floor for any Node proxy), side by side in one run. Writes TPS, mean
 * and p99 latency (from pgbench --log) and ratios to bench/results/pg-<time>.{json,md}.
 *
 * A benchmark, not a test: nothing here asserts a speed. BENCH_SECONDS (default 10) sets the
 * length of each point; BENCH_CLIENTS (default "1,8") the client counts; BENCH_MODES (default
 * "simple,prepared") the pgbench -M modes; BENCH_PATHS (e.g. "tg-async") limits the tracegate paths.
 */
import { execFile, spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { cpus, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { brokerV1, SERVICE_PROTOS } from '@tracegate/contracts';
import { grpcClient, startServices } from '@tracegate/runtime';
import { approvalsService } from '@tracegate/approvals';
import { auditService } from '@tracegate/audit';
import { brokerService } from '@tracegate/broker';
import { gatewayService } from '@tracegate/gateway';
import { maskingService } from '@tracegate/masking';
import { policyService } from '@tracegate/policy';
import { freePort, startPostgres } from '@tracegate/test-harness';

const run = promisify(execFile);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const CLIENTS = (process.env.BENCH_CLIENTS ?? '1,8').split(',').map(Number);
const MODES = (process.env.BENCH_MODES ?? 'simple,prepared').split(',');
/** Which paths to run (default all): for profiling one of them. */
const PATHS = process.env.BENCH_PATHS?.split(',');
// The all-in-one's start order: what the gateway calls first.
const ALL_SERVICES = [brokerService, policyService, maskingService, approvalsService, auditService, gatewayService];
const workspace = fileURLToPath(new URL('../../../', import.meta.url));

interface Point {
  readonly path: string;
  readonly mode: string;
  readonly clients: number;
  readonly tps: number;
  readonly meanUs: number;
  readonly p99Us: number;
  readonly transactions: number;
}

async function pgbench(conn: { host: string; port: number; user: string; password: string; database: string }, mode: string, clients: number, label: string): Promise<Point> {
  const logDir = mkdtempSync(path.join(tmpdir(), 'pgbench-log-'));
  chmodSync(logDir, 0o777);
  const args = ['-h', conn.host, '-p', String(conn.port), '-U', conn.user, '-S', '-M', mode, '-c', String(clients), '-j', String(Math.min(clients, cpus().length)), '-T', String(SECONDS), '-n', '--log', `--log-prefix=${path.join(logDir, 'tx')}`, conn.database];
  const { stdout } = await run('pgbench', args, { env: { ...process.env, PGPASSWORD: conn.password, PGSSLMODE: 'disable' }, maxBuffer: 16 * 1024 * 1024 });
  const tps = Number(/tps = ([\d.]+)/.exec(stdout)?.[1] ?? NaN);
  const latencies: number[] = [];
  for (const file of readdirSync(logDir)) {
    for (const line of readFileSync(path.join(logDir, file), 'utf8').split('\n')) {
      const fields = line.split(' ');
      if (fields.length >= 3) latencies.push(Number(fields[2]));
    }
  }
  rmSync(logDir, { recursive: true, force: true });
  latencies.sort((a, b) => a - b);
  const mean = latencies.reduce((s, v) => s + v, 0) / Math.max(1, latencies.length);
  const p99 = latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * 0.99))] ?? NaN;
  process.stderr.write(`${label.padEnd(10)} ${mode.padEnd(8)} c=${clients}  ${tps.toFixed(0)} TPS  mean ${mean.toFixed(0)} µs  p99 ${p99.toFixed(0)} µs\n`);
  return { path: label, mode, clients, tps, meanUs: mean, p99Us: p99, transactions: latencies.length };
}

/**
 * The floor: bytes copied between sockets, nothing parsed. In a process of its own, as PgBouncer
 * is, so it does not share an event loop with the tracegate services this driver hosts.
 */
const PIPE_SOURCE = `
const net = require('node:net');
const [host, port] = [process.argv[1], Number(process.argv[2])];
const server = net.createServer((client) => {
  client.setNoDelay(true);
  const upstream = net.connect({ host, port, noDelay: true });
  client.pipe(upstream).pipe(client);
  const end = () => { client.destroy(); upstream.destroy(); };
  client.on('error', end);
  upstream.on('error', end);
});
server.listen(0, '127.0.0.1', () => process.stdout.write(server.address().port + '\\n'));
`;

async function barePipe(target: { host: string; port: number }): Promise<{ port: number; close(): Promise<void> }> {
  const child = spawn(process.execPath, ['-e', PIPE_SOURCE, target.host, String(target.port)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout.once('data', (d: Buffer) => resolve(Number(d.toString().trim())));
    child.once('exit', (code) => reject(new Error(`the pipe process exited with ${code}`)));
  });
  return {
    port,
    close: async () => {
      child.kill('SIGTERM');
    },
  };
}

const GATEWAY_MAIN = fileURLToPath(new URL('../../../services/gateway/dist/main.js', import.meta.url));

/** A gateway on its own (`services/gateway/dist/main.js`), ready once its Postgres port accepts connections. */
async function gatewayProcess(environment: Record<string, string>, port: number): Promise<{ stop(): Promise<void> }> {
  const child = spawn(process.execPath, [GATEWAY_MAIN], { env: { PATH: process.env.PATH ?? '', ...environment }, stdio: ['ignore', 'ignore', 'inherit'] });
  for (let i = 0; ; i += 1) {
    if (child.exitCode !== null) throw new Error(`the gateway process exited with ${child.exitCode}`);
    const up = await new Promise<boolean>((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port }, () => (s.destroy(), resolve(true)));
      s.on('error', () => resolve(false));
    });
    if (up) break;
    if (i > 600) throw new Error('the gateway process did not start listening within 60 s');
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    async stop() {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/** PgBouncer in session pooling, run as an unprivileged user (it refuses root). */
async function startPgBouncer(target: { host: string; port: number; user: string; password: string; database: string }) {
  const dir = mkdtempSync(path.join(tmpdir(), 'pgbouncer-'));
  chmodSync(dir, 0o777);
  const port = await freePort();
  writeFileSync(path.join(dir, 'users.txt'), `"${target.user}" "${target.password}"\n`);
  writeFileSync(
    path.join(dir, 'pgbouncer.ini'),
    [
      '[databases]',
      `${target.database} = host=${target.host} port=${target.port} dbname=${target.database} user=${target.user} password=${target.password}`,
      '[pgbouncer]',
      `listen_addr = 127.0.0.1`,
      `listen_port = ${port}`,
      `unix_socket_dir =`,
      `auth_type = plain`,
      `auth_file = ${path.join(dir, 'users.txt')}`,
      `pool_mode = session`,
      `max_client_conn = 100`,
      `default_pool_size = 20`,
      `logfile = ${path.join(dir, 'pgbouncer.log')}`,
      `pidfile = ${path.join(dir, 'pgbouncer.pid')}`,
      '',
    ].join('\n'),
  );
  for (const f of readdirSync(dir)) chmodSync(path.join(dir, f), 0o644);
  const asUser = process.getuid?.() === 0 ? ['runuser', ['-u', 'postgres', '--', 'pgbouncer', path.join(dir, 'pgbouncer.ini')]] : ['pgbouncer', [path.join(dir, 'pgbouncer.ini')]];
  const child = spawn(asUser[0] as string, asUser[1] as string[], { stdio: 'ignore' });
  for (let i = 0; i < 100; i += 1) {
    const up = await new Promise<boolean>((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port }, () => (s.destroy(), resolve(true)));
      s.on('error', () => resolve(false));
    });
    if (up) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    port,
    async stop() {
      child.kill('SIGTERM');
      await new Promise((r) => setTimeout(r, 200));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function main() {
  const target = await startPostgres();
  const targetUrl = new URL(await target.createDatabase('bench'));
  const conn = { host: targetUrl.hostname, port: Number(targetUrl.port), user: decodeURIComponent(targetUrl.username), password: decodeURIComponent(targetUrl.password), database: 'bench' };
  process.stderr.write('pgbench -i -s 10 …\n');
  await run('pgbench', ['-i', '-q', '-s', '10', '-h', conn.host, '-p', String(conn.port), '-U', conn.user, conn.database], { env: { ...process.env, PGPASSWORD: conn.password } });

  const internalToken = 'bench-internal-token-0123456789abcdef';
  const env: Record<string, string> = {
    TRACEGATE_LOG_LEVEL: 'warn',
    TRACEGATE_INTERNAL_TOKEN: internalToken,
    TRACEGATE_BROKER_KEYS: `bench:${Buffer.alloc(32, 7).toString('base64')}`,
    TRACEGATE_GATEWAY_ALLOW_PLAINTEXT: 'true',
    TRACEGATE_GATEWAY_POSTGRES_PORT: String(await freePort()),
    // Nothing masked: this compares the cost of inspection and recording (masking has its own bench).
    TRACEGATE_GATEWAY_MASKING_PROFILE: '',
  };
  for (const def of ALL_SERVICES) {
    env[`TRACEGATE_${def.name.toUpperCase()}_GRPC_PORT`] = String(await freePort());
    env[`TRACEGATE_${def.name.toUpperCase()}_METRICS_PORT`] = String(await freePort());
  }
  const tracegateDatabase = await target.createDatabase('tracegate');
  // The services in this process; each gateway in a process of its own, as deployed (and as
  // PgBouncer and the bare pipe run), so no path shares an event loop with the audit projection.
  const tracegate = await startServices(
    ALL_SERVICES.filter((def) => def !== gatewayService),
    { component: 'tracegate-bench', databaseUrl: tracegateDatabase, env },
  );
  const gatewayEnv = (durability: 'strict' | 'async', port: number, grpc: number, metrics: number) => ({
    ...env,
    DATABASE_URL: tracegateDatabase,
    TRACEGATE_DURABILITY: durability,
    TRACEGATE_GATEWAY_POSTGRES_PORT: String(port),
    TRACEGATE_GATEWAY_GRPC_PORT: String(grpc),
    TRACEGATE_GATEWAY_METRICS_PORT: String(metrics),
    TRACEGATE_BROKER_ADDRESS: `127.0.0.1:${env.TRACEGATE_BROKER_GRPC_PORT}`,
    TRACEGATE_POLICY_ADDRESS: `127.0.0.1:${env.TRACEGATE_POLICY_GRPC_PORT}`,
    TRACEGATE_MASKING_ADDRESS: `127.0.0.1:${env.TRACEGATE_MASKING_GRPC_PORT}`,
    TRACEGATE_APPROVALS_ADDRESS: `127.0.0.1:${env.TRACEGATE_APPROVALS_GRPC_PORT}`,
    TRACEGATE_AUDIT_ADDRESS: `127.0.0.1:${env.TRACEGATE_AUDIT_GRPC_PORT}`,
  });
  const strictPort = Number(env.TRACEGATE_GATEWAY_POSTGRES_PORT);
  const asyncPort = await freePort();
  const strictGateway = await gatewayProcess(gatewayEnv('strict', strictPort, Number(env.TRACEGATE_GATEWAY_GRPC_PORT), Number(env.TRACEGATE_GATEWAY_METRICS_PORT)), strictPort);
  const asyncGateway = await gatewayProcess(gatewayEnv('async', asyncPort, await freePort(), await freePort()), asyncPort);
  const asyncEnv = { TRACEGATE_GATEWAY_POSTGRES_PORT: String(asyncPort) };
  const metadata = { 'x-tracegate-internal-token': internalToken };
  const brokerAddress = `127.0.0.1:${env.TRACEGATE_BROKER_GRPC_PORT}`;
  const targets = grpcClient<brokerV1.TargetServiceClient>(SERVICE_PROTOS.broker.files[0], 'tracegate.broker.v1.TargetService', brokerAddress, { metadata });
  const identities = grpcClient<brokerV1.IdentityServiceClient>(SERVICE_PROTOS.broker.files[0], 'tracegate.broker.v1.IdentityService', brokerAddress, { metadata });
  await targets.addTarget({
    target: { name: 'bench', type: brokerV1.TargetType.TARGET_TYPE_POSTGRES, host: conn.host, port: conn.port, database: 'bench', user: conn.user, tls: brokerV1.TlsMode.TLS_MODE_DISABLE, labels: {} },
    secret: conn.password,
  } as brokerV1.AddTargetRequest);
  const key = await identities.createKey({ name: 'bench-human', kind: brokerV1.IdentityKind.IDENTITY_KIND_HUMAN, groups: [] });
  targets.close();
  identities.close();

  const pipe = await barePipe(conn);
  const bouncer = await startPgBouncer(conn);
  const paths = {
    direct: conn,
    tracegate: { ...conn, port: Number(env.TRACEGATE_GATEWAY_POSTGRES_PORT), user: 'bench-human', password: key.secret },
    'tg-async': { ...conn, port: Number(asyncEnv.TRACEGATE_GATEWAY_POSTGRES_PORT), user: 'bench-human', password: key.secret },
    pgbouncer: { ...conn, port: bouncer.port },
    'node-pipe': { ...conn, port: pipe.port },
  };
  const points: Point[] = [];
  try {
    for (const mode of MODES) {
      for (const clients of CLIENTS) {
        for (const [label, c] of Object.entries(paths)) if (!PATHS || PATHS.includes(label) || label === 'direct' || label === 'pgbouncer' || label === 'node-pipe') points.push(await pgbench(c, mode, clients, label));
      }
    }
  } finally {
    await bouncer.stop();
    await pipe.close();
    await asyncGateway.stop();
    await strictGateway.stop();
    await tracegate.stop();
    await target.stop();
  }
  report(points);
}

function report(points: Point[]) {
  const at = (p: string, mode: string, clients: number) => points.find((x) => x.path === p && x.mode === mode && x.clients === clients)!;
  const rows = points.map((p) => {
    const direct = at('direct', p.mode, p.clients);
    const bouncer = at('pgbouncer', p.mode, p.clients);
    const pipe = at('node-pipe', p.mode, p.clients);
    return { ...p, ofDirect: p.tps / direct.tps, ofPgBouncer: p.tps / bouncer.tps, ofPipe: p.tps / pipe.tps, addedMeanUs: p.meanUs - direct.meanUs };
  });
  const outDir = path.join(workspace, 'bench', 'results');
  mkdirSync(outDir, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const machine = { cpus: cpus().length, model: cpus()[0]?.model ?? '', node: process.versions.node, secondsPerPoint: SECONDS };
  writeFileSync(path.join(outDir, `pg-${stamp}.json`), `${JSON.stringify({ machine, rows }, null, 2)}\n`);
  const md = [
    `# pgbench -S, ${SECONDS} s per point, ${machine.cpus} cores (${machine.model}), Node ${machine.node}`,
    '',
    'tracegate: every statement decided by policy (decisions cached per policy version) and recorded on the event log (PostgreSQL, the all-in-one default), nothing masked; `tracegate` waits for the log before each statement runs (strict durability, the default), `tg-async` does not. Plaintext client connections on every path (TLS off), all on one 2-core machine with pgbench.',
    '',
    '| path | mode | clients | TPS | of direct | of PgBouncer | of bare pipe | mean µs | p99 µs | added mean µs |',
    '|---|---|---|---|---|---|---|---|---|---|',
    ...rows.map((r) => `| ${r.path} | ${r.mode} | ${r.clients} | ${r.tps.toFixed(0)} | ${r.ofDirect.toFixed(2)} | ${r.ofPgBouncer.toFixed(2)} | ${r.ofPipe.toFixed(2)} | ${r.meanUs.toFixed(0)} | ${r.p99Us.toFixed(0)} | ${r.addedMeanUs.toFixed(0)} |`),
    '',
  ].join('\n');
  writeFileSync(path.join(outDir, `pg-${stamp}.md`), md);
  writeFileSync(path.join(outDir, 'pg-latest.md'), md);
  process.stdout.write(md);
}

await main();
process.exit(0);
