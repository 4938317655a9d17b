/**
 * `npm run bench:masked-select`: the same 100,000-row SELECT (e-mails, phone numbers, card
 * numbers, SSNs and free text with secrets in it) read with psql directly from PostgreSQL,
 * through the gateway unmasked, and through the gateway masking it with the built-in `default`
 * profile (column rules and every detector over free text), side by side in one run. Writes the
 * times and ratios to bench/results/masked-select-<time>.{json,md}.
 *
 * A benchmark, not a test: nothing here asserts a speed. BENCH_RUNS (default 5) reads per path;
 * the median counts.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import pg from 'pg';
import { startPostgres } from '@tracegate/test-harness';
import { startBenchStack } from './bench-stack.js';

const run = promisify(execFile);
const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const ROWS = 100_000;
const QUERY = 'SELECT * FROM customers';
const workspace = fileURLToPath(new URL('../../../', import.meta.url));

async function timedRead(url: string): Promise<number> {
  const started = process.hrtime.bigint();
  const { stdout } = await run('psql', ['-X', '-At', '-c', QUERY, url], { maxBuffer: 512 * 1024 * 1024 });
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  const rows = stdout.split('\n').filter(Boolean).length;
  if (rows !== ROWS) throw new Error(`read ${rows} rows, not ${ROWS}`);
  return ms;
}

async function main() {
  const target = await startPostgres();
  const targetUrl = new URL(await target.createDatabase('bench'));
  const conn = { host: targetUrl.hostname, port: Number(targetUrl.port), user: decodeURIComponent(targetUrl.username), password: decodeURIComponent(targetUrl.password), database: 'bench' };
  const setup = new pg.Client({ connectionString: targetUrl.toString() });
  await setup.connect();
  await setup.query('CREATE TABLE customers (id int PRIMARY KEY, email text, phone text, card_number text, ssn text, notes text)');
  await setup.query(`
    INSERT INTO customers
    SELECT g, 'user' || g || '@example.com', '+1415555' || lpad((g % 10000)::text, 4, '0'), '4111 1111 1111 ' || lpad((g % 10000)::text, 4, '0'),
           '123-45-' || lpad((g % 9999 + 1)::text, 4, '0'),
           'called user' || g || '@example.com about invoice ' || g || '; token ghp_' || substr(md5(g::text) || md5((g + 1)::text), 1, 36)
    FROM generate_series(1, ${ROWS}) AS g`);
  await setup.end();

  const stack = await startBenchStack(await target.createDatabase('tracegate'), conn);
  const unmasked = await stack.gateway({ TRACEGATE_DURABILITY: 'async', TRACEGATE_GATEWAY_MASKING_PROFILE: 'none' });
  const masked = await stack.gateway({ TRACEGATE_DURABILITY: 'async', TRACEGATE_GATEWAY_MASKING_PROFILE: 'default' });
  const via = (port: number) => `postgresql://${stack.user}:${encodeURIComponent(stack.password)}@127.0.0.1:${port}/bench?sslmode=disable`;
  const paths: [string, string][] = [
    ['direct', `postgresql://${encodeURIComponent(conn.user)}:${encodeURIComponent(conn.password)}@${conn.host}:${conn.port}/bench?sslmode=disable`],
    ['gateway, unmasked', via(unmasked)],
    ['gateway, masked (default profile)', via(masked)],
  ];
  const results: { path: string; runsMs: number[]; medianMs: number }[] = [];
  try {
    for (const [label, url] of paths) {
      await timedRead(url); // warm: caches, lineage, JIT
      const runsMs: number[] = [];
      for (let i = 0; i < RUNS; i += 1) runsMs.push(await timedRead(url));
      const sorted = [...runsMs].sort((a, b) => a - b);
      const medianMs = sorted[Math.floor(sorted.length / 2)]!;
      process.stderr.write(`${label.padEnd(36)} median ${medianMs.toFixed(0)} ms (${runsMs.map((r) => r.toFixed(0)).join(', ')})\n`);
      results.push({ path: label, runsMs, medianMs });
    }
  } finally {
    await stack.stop();
    await target.stop();
  }
  const direct = results[0]!.medianMs;
  const plain = results[1]!.medianMs;
  const outDir = path.join(workspace, 'bench', 'results');
  mkdirSync(outDir, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const machine = { cpus: cpus().length, model: cpus()[0]?.model ?? '', node: process.versions.node, runs: RUNS, rows: ROWS };
  writeFileSync(path.join(outDir, `masked-select-${stamp}.json`), `${JSON.stringify({ machine, results }, null, 2)}\n`);
  const md = [
    `# ${ROWS.toLocaleString('en')}-row SELECT with personal data, psql, median of ${RUNS} reads, ${machine.cpus} cores (${machine.model}), Node ${machine.node}`,
    '',
    'Six columns per row: e-mail, phone, card number, SSN (masked by column rules) and free text holding an e-mail address and a GitHub token (masked by detectors). Both gateways record asynchronously; the masked one also records the first 100 masked rows of each result.',
    '',
    '| path | median ms | of direct | of unmasked gateway |',
    '|---|---|---|---|',
    ...results.map((r) => `| ${r.path} | ${r.medianMs.toFixed(0)} | ${(r.medianMs / direct).toFixed(2)} | ${(r.medianMs / plain).toFixed(2)} |`),
    '',
    'The goal: masked at most 1.5 times the unmasked gateway.',
    '',
  ].join('\n');
  writeFileSync(path.join(outDir, `masked-select-${stamp}.md`), md);
  writeFileSync(path.join(outDir, 'masked-select-latest.md'), md);
  process.stdout.write(md);
}

await main();
process.exit(0);
