/**
 * `npm run bench:audit`: how fast the audit service projects session events from the log into
 * PostgreSQL, and how long a statement takes to become readable through `GetSession` (what
 * `tracegate sessions show` calls), on the PostgreSQL event log (the all-in-one default) and on
 * Kafka. Writes bench/results/audit-<time>.{json,md} and audit-latest.{json,md}.
 *
 * - Throughput: BENCH_AUDIT_EVENTS session events (default 100,000: sessions of 20 events each) are
 *   on the log before the audit service starts; the clock runs from its start until every event
 *   is applied (the projection's consumer lag reads 0).
 * - End-to-end lag: with the projection caught up, BENCH_AUDIT_SAMPLES statements (default 200)
 *   are appended one at a time, as the gateway appends them, and GetSession is polled every
 *   millisecond until the statement is there; p50 and p99 of append-to-readable.
 *
 * A benchmark, not a test: nothing here asserts a speed. BENCH_AUDIT_LOGS ("postgres,kafka") picks
 * the logs.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { auditV1, SERVICE_PROTOS } from '@tracegate/contracts';
import { ALL_TOPICS, KafkaEventLog, PostgresEventLog, TOPICS, type EventLog, type LogRecord } from '@tracegate/events';
import { grpcClient, startServices } from '@tracegate/runtime';
import { auditService } from '@tracegate/audit';
import { GatewaySessionScript } from '@tracegate/audit/domain/session-events.testing';
import { freePort, startKafka, startPostgres } from '@tracegate/test-harness';

const EVENTS = Number(process.env.BENCH_AUDIT_EVENTS ?? 100_000);
const SAMPLES = Number(process.env.BENCH_AUDIT_SAMPLES ?? 200);
const LOGS = (process.env.BENCH_AUDIT_LOGS ?? 'postgres,kafka').split(',').map((l) => l.trim()) as ('postgres' | 'kafka')[];
const workspace = fileURLToPath(new URL('../../../', import.meta.url));
const TOKEN = randomBytes(32).toString('base64url');

interface Result {
  readonly log: 'postgres' | 'kafka';
  readonly events: number;
  /** From the service's start (migrations, subscribing) until the lag is 0. */
  readonly seconds: number;
  readonly eventsPerSecond: number;
  /** From the first applied batch until the lag is 0: the projection's own rate. */
  readonly steadyEventsPerSecond: number;
  readonly lagSamples: number;
  readonly lagP50Ms: number;
  readonly lagP99Ms: number;
  readonly lagMaxMs: number;
}

/** Sessions of 20 events each (started, 6 statements requested/decided/completed, ended), as the gateway writes them. */
function sessionRecords(total: number): LogRecord[] {
  const records: LogRecord[] = [];
  let start = Date.parse('2026-11-22T00:00:00Z');
  while (records.length < total) {
    const script = new GatewaySessionScript(randomUUID(), (start += 1000)).started({ identityName: 'bench-agent', target: 'billing' });
    for (let i = 1; i <= 6; i += 1) script.requested(`s${i}`, `SELECT * FROM invoices WHERE id = ${i}`).completed(`s${i}`, { commandTag: 'SELECT 1', rows: 1 });
    script.ended();
    records.push(...script.records());
  }
  return records.slice(0, total);
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? NaN;
}

async function benchLog(kind: 'postgres' | 'kafka'): Promise<Result> {
  const postgres = await startPostgres();
  const kafka = kind === 'kafka' ? await startKafka({ properties: { 'num.partitions': 6 } }) : undefined;
  const databaseUrl = await postgres.createDatabase('audit_bench');
  const env: Record<string, string> = {
    TRACEGATE_LOG_LEVEL: 'warn',
    TRACEGATE_INTERNAL_TOKEN: TOKEN,
    TRACEGATE_AUDIT_GRPC_PORT: String(await freePort()),
    TRACEGATE_AUDIT_METRICS_PORT: String(await freePort()),
    TRACEGATE_AUDIT_CHECKPOINT_KEY: randomBytes(32).toString('base64'),
    ...(kafka ? { KAFKA_BROKERS: kafka.brokers } : {}),
  };
  const producer: EventLog = kafka ? new KafkaEventLog({ brokers: kafka.brokers, clientId: 'audit-bench' }) : await PostgresEventLog.connect(databaseUrl);
  const db = new pg.Client({ connectionString: databaseUrl });
  await db.connect();
  try {
    await producer.ensureTopics(ALL_TOPICS);
    const records = sessionRecords(EVENTS);
    process.stderr.write(`${kind}: appending ${records.length} session events…\n`);
    for (let i = 0; i < records.length; i += 5000) await producer.append(records.slice(i, i + 5000));

    process.stderr.write(`${kind}: projecting…\n`);
    const started = performance.now();
    const audit = await startServices([auditService], { component: 'audit-bench', databaseUrl, env });
    let seconds: number;
    let steady: number;
    try {
      const [{ generation }] = (await db.query<{ generation: string }>(`SELECT generation::text AS generation FROM audit.projection WHERE name = 'sessions'`)).rows as [{ generation: string }];
      const group = `audit-projection.${generation}`;
      let first: { at: number; applied: number } | undefined;
      for (;;) {
        const { rows } = await db.query<{ n: string }>(`SELECT count(*) AS n FROM audit.session_events`);
        const applied = Number(rows[0]!.n);
        if (applied > 0) first ??= { at: performance.now(), applied };
        if (applied >= records.length && (await audit.eventLog.consumerLag(group, [TOPICS.sessions.name])) === 0) break;
        await sleep(20);
      }
      seconds = (performance.now() - started) / 1000;
      steady = first ? (records.length - first.applied) / ((performance.now() - first.at) / 1000) : NaN;
      process.stderr.write(`${kind}: ${records.length} events in ${seconds.toFixed(2)} s from start (${Math.round(records.length / seconds)}/s; ${Math.round(steady)}/s once projecting); measuring end-to-end lag…\n`);

      const client = grpcClient<auditV1.AuditServiceClient>(SERVICE_PROTOS.audit.files[0], 'tracegate.audit.v1.AuditService', `127.0.0.1:${env.TRACEGATE_AUDIT_GRPC_PORT}`, {
        metadata: { 'x-tracegate-internal-token': TOKEN },
      });
      const lags: number[] = [];
      try {
        const session = new GatewaySessionScript(randomUUID(), Date.now()).started({ identityName: 'bench-agent', target: 'billing' });
        await producer.append(session.records());
        for (let i = 1; i <= SAMPLES; i += 1) {
          const before = session.events.length;
          session.requested(`lag${i}`, `SELECT ${i}`);
          const appended = performance.now();
          // The gateway appends requested and decided together before the statement runs.
          await producer.append(session.records().slice(before));
          for (;;) {
            const { statements } = await client.getSession({ id: session.sessionId }).catch(() => ({ statements: [] as auditV1.Statement[] }));
            if (statements.some((s) => s.statementId === `lag${i}` && s.effect)) break;
            await sleep(1);
          }
          lags.push(performance.now() - appended);
          await sleep(5);
        }
      } finally {
        client.close();
      }
      lags.sort((a, b) => a - b);
      return {
        log: kind,
        events: records.length,
        seconds,
        eventsPerSecond: records.length / seconds,
        steadyEventsPerSecond: steady,
        lagSamples: lags.length,
        lagP50Ms: percentile(lags, 50),
        lagP99Ms: percentile(lags, 99),
        lagMaxMs: lags.at(-1) ?? NaN,
      };
    } finally {
      await audit.stop();
    }
  } finally {
    await db.end();
    await producer.close();
    await kafka?.stop();
    await postgres.stop();
  }
}

function report(results: readonly Result[]): void {
  const outDir = path.join(workspace, 'bench', 'results');
  mkdirSync(outDir, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const machine = { cpus: cpus().length, model: cpus()[0]?.model ?? '', node: process.versions.node };
  const json = `${JSON.stringify({ machine, results }, null, 2)}\n`;
  const md = [
    `# audit projection, ${machine.cpus} cores (${machine.model}), Node ${machine.node}`,
    '',
    `Throughput: ${EVENTS.toLocaleString('en')} session events already on the log, projected from the audit service's start (fresh schema: migrations, subscribing) until its consumer lag is 0, and from its first applied batch (batches of up to 1000 events per transaction; sessions of 20 events). End-to-end lag: a statement's requested+decided events appended as the gateway appends them, until GetSession returns it with its decision (polled every 1 ms), ${SAMPLES} samples one after another. Everything (PostgreSQL, Kafka, the service, this driver) on one machine.`,
    '',
    '| event log | events | seconds from start | events/s from start | events/s once projecting | lag p50 ms | lag p99 ms | lag max ms |',
    '|---|---|---|---|---|---|---|---|',
    ...results.map(
      (r) =>
        `| ${r.log} | ${r.events} | ${r.seconds.toFixed(2)} | ${Math.round(r.eventsPerSecond)} | ${Math.round(r.steadyEventsPerSecond)} | ${r.lagP50Ms.toFixed(1)} | ${r.lagP99Ms.toFixed(1)} | ${r.lagMaxMs.toFixed(1)} |`,
    ),
    '',
  ].join('\n');
  writeFileSync(path.join(outDir, `audit-${stamp}.json`), json);
  writeFileSync(path.join(outDir, `audit-${stamp}.md`), md);
  writeFileSync(path.join(outDir, 'audit-latest.json'), json);
  writeFileSync(path.join(outDir, 'audit-latest.md'), md);
  process.stdout.write(md);
}

const results: Result[] = [];
for (const log of LOGS) results.push(await benchLog(log));
report(results);
process.exit(0);
