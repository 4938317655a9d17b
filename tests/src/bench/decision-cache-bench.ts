/**
 * `npm run bench:decision-cache`: what deciding a statement costs the gateway when the decision
 * is cached — the path every statement takes after the first of its shape under a policy
 * version. Measured in process: the cache lookup alone (CachingJudge.decide on a hit), and with
 * what precedes it for a simple-protocol query (finding its statements and their fingerprint).
 * The goal for the cached path: under 5 µs per statement.
 *
 * Writes bench/results/decision-cache-<time>.{json,md} and decision-cache-latest.md. A benchmark,
 * not a test: nothing here asserts a speed. BENCH_SECONDS (default 3) per measurement.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CachingJudge, type PolicyVersionSource } from '@tracegate/gateway/postgres/decision-cache';
import type { StatementContext, StatementDecision, StatementJudge } from '@tracegate/gateway/postgres/ports';
import { loadSqlParser, splitStatements } from '@tracegate/gateway/postgres/statements';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
const workspace = fileURLToPath(new URL('../../../', import.meta.url));

/** The policy service's answer, as the gateway caches it: it depended on the statement and the identity's kind. */
class AnsweringJudge implements StatementJudge {
  calls = 0;
  async decide(): Promise<StatementDecision> {
    this.calls += 1;
    return { effect: 'allow', rule: 'agents-read', reason: '', policyVersion: 'v1', maskingProfile: 'default', dependsOn: ['command.fingerprint', 'identity.kind', 'target.name'] };
  }
}

const versions: PolicyVersionSource = {
  watch(onVersion) {
    onVersion('v1');
    return () => undefined;
  },
};

const context = (text: string, fingerprint: string): StatementContext => ({
  identity: { id: 'key-1', name: 'billing-bot', kind: 'agent', groups: ['bots'] },
  target: 'billing',
  targetLabels: { env: 'production' },
  text,
  fingerprint,
  parsed: true,
  inMultiStatement: false,
  protocol: 'simple',
  traceId: 't-1',
  trace: { confidence: 0.9, model: 'none', tags: ['billing'] },
});

async function measure(label: string, step: (i: number) => Promise<unknown> | unknown): Promise<{ label: string; perOpUs: number; ops: number }> {
  for (let i = 0; i < 20_000; i += 1) await step(i); // warm
  const deadline = process.hrtime.bigint() + BigInt(SECONDS * 1e9);
  const started = process.hrtime.bigint();
  let ops = 0;
  while (process.hrtime.bigint() < deadline) {
    for (let j = 0; j < 1000; j += 1) await step(ops + j);
    ops += 1000;
  }
  const perOpUs = Number(process.hrtime.bigint() - started) / 1000 / ops;
  process.stderr.write(`${label.padEnd(58)} ${perOpUs.toFixed(2)} µs\n`);
  return { label, perOpUs, ops };
}

async function main() {
  await loadSqlParser();
  const inner = new AnsweringJudge();
  const judge = new CachingJudge(inner, versions);
  judge.start();
  const texts = Array.from({ length: 1000 }, (_, i) => `SELECT abalance FROM pgbench_accounts WHERE aid = ${i + 1}`);
  const fingerprint = splitStatements(texts[0]!)[0]!.fingerprint;
  const contexts = texts.map((t) => context(t, fingerprint));
  const results = [
    await measure('cached decision (CachingJudge.decide, a hit)', (i) => judge.decide(contexts[i % contexts.length]!)),
    await measure('fingerprint + cached decision (a one-statement simple query)', (i) => {
      const [statement] = splitStatements(texts[i % texts.length]!);
      return judge.decide(context(statement!.text, statement!.fingerprint));
    }),
  ];
  judge.stop();
  const hitRate = judge.hits / (judge.hits + judge.misses);
  const outDir = path.join(workspace, 'bench', 'results');
  mkdirSync(outDir, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const machine = { cpus: cpus().length, model: cpus()[0]?.model ?? '', node: process.versions.node, secondsPerPoint: SECONDS };
  writeFileSync(path.join(outDir, `decision-cache-${stamp}.json`), `${JSON.stringify({ machine, results, hitRate, policyCalls: inner.calls }, null, 2)}\n`);
  const md = [
    `# The gateway's cached decision path, in process, ${SECONDS} s per point, ${machine.cpus} cores (${machine.model}), Node ${machine.node}`,
    '',
    `Policy service calls: ${inner.calls} (the first of the shape); cache hit rate ${(hitRate * 100).toFixed(3)} %. Goal: under 5 µs per statement on the cached path.`,
    '',
    '| path | µs per statement |',
    '|---|---|',
    ...results.map((r) => `| ${r.label} | ${r.perOpUs.toFixed(2)} |`),
    '',
  ].join('\n');
  writeFileSync(path.join(outDir, `decision-cache-${stamp}.md`), md);
  writeFileSync(path.join(outDir, 'decision-cache-latest.md'), md);
  process.stdout.write(md);
}

await main();
process.exit(0);
