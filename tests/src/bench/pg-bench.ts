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
import { cpus, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { freePort, startPostgres } from '@tracegate/test-harness';
import { accepts, startBenchStack } from './bench-stack.js';

const run = promisify(execFile);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const CLIENTS = (process.env.BENCH_CLIENTS ?? '1,8').split(',').map(Number);
const MODES = (process.env.BENCH_MODES ?? 'simple,prepared').split(',');
/** Which paths to run (default all): for profiling one of them. */
const PATHS = process.env.BENCH_PATHS?.split(',');
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
  for (let i = 0; i < 100 && !(await accepts(port)); i += 1) await new Promise((r) => setTimeout(r, 100));
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

  const stack = await startBenchStack(await target.createDatabase('tracegate'), conn);
  // Nothing masked: this compares the cost of inspection and recording (masking has its own bench).
  const strictPort = await stack.gateway({ TRACEGATE_DURABILITY: 'strict', TRACEGATE_GATEWAY_MASKING_PROFILE: 'none' });
  const asyncPort = await stack.gateway({ TRACEGATE_DURABILITY: 'async', TRACEGATE_GATEWAY_MASKING_PROFILE: 'none' });

  const pipe = await barePipe(conn);
  const bouncer = await startPgBouncer(conn);
  const paths = {
    direct: conn,
    tracegate: { ...conn, port: strictPort, user: stack.user, password: stack.password },
    'tg-async': { ...conn, port: asyncPort, user: stack.user, password: stack.password },
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
    await stack.stop();
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
