/**
 * `npm run bench:policy`: how many decisions the policy service makes per second, and what a
 * decision costs inside it.
 *
 * - over gRPC: the policy service in its own process (as deployed: `services/policy/dist/main.js`
 *   on embedded PostgreSQL), driven by BENCH_LOADERS other processes with BENCH_CONCURRENCY calls
 *   in flight over BENCH_CHANNELS channels in all. Every statement text is distinct, so each call
 *   is what the gateway sends on a decision-cache miss: parse, analyse, decide. A request the
 *   service refuses at once (no identity) measures the transport's own floor.
 * - in process: analyse + decide (one core), decide alone on analysed input, for the built-in
 *   policy (match fields only) and the example policies (CEL `when` conditions);
 * - CEL: the cost of building the CEL input once per decision and of one `when` evaluation.
 *
 * Writes bench/results/policy-<time>.{json,md} and policy-latest.{json,md}. A benchmark, not a
 * test: nothing here asserts a speed. BENCH_SECONDS (default 10) sets the length of each point.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  credentials,
  loadPackageDefinition,
  Metadata,
  Server,
  ServerCredentials,
  status as GrpcStatus,
  type Client,
  type sendUnaryData,
  type ServerUnaryCall,
  type ServiceError,
} from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { PROTO_LOADER_OPTIONS, PROTO_ROOT, policyV1, SERVICE_PROTOS } from '@tracegate/contracts';
import { grpcClient, INTERNAL_TOKEN_METADATA } from '@tracegate/runtime';
import { BUILTIN_POLICY_SOURCE, BUILTIN_POLICY_YAML } from '@tracegate/policy/domain/builtin-policy';
import { compileCelCondition } from '@tracegate/policy/domain/cel-condition';
import { parsePolicyDocument } from '@tracegate/policy/domain/policy-document';
import { celActivationOf, PolicyEngine, type DecisionInput } from '@tracegate/policy/domain/policy-engine';
import { analyseShellCommand } from '@tracegate/policy/domain/shell-analysis';
import { analyseStatement, loadSqlParser } from '@tracegate/policy/domain/sql-analysis';
import { PolicyError } from '@tracegate/policy/domain/policy-error';
import { readPolicyDirectory } from '@tracegate/policy/repositories/policy-file.repository';
import { analyseCommand, commandOf, decideResponseOf, decisionInputOf } from '@tracegate/policy/services/proto-mapping';
import { freePort, pollUntil, startPostgres } from '@tracegate/test-harness';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 64);
const CHANNELS = Number(process.env.BENCH_CHANNELS ?? 4);
/** Load-generating processes: one Node process cannot produce enough calls to keep the service busy. */
const LOADERS = Number(process.env.BENCH_LOADERS ?? 2);
/** Statements per DecideBatch call in the batched points. */
const BATCH = Number(process.env.BENCH_BATCH ?? 32);
const workspace = fileURLToPath(new URL('../../../', import.meta.url));
const TOKEN = 'policy-bench-internal-token-0123456789abcdef';

/** Statement shapes an agent sends; `$n` makes every text distinct (a cache miss at the gateway). */
const TEMPLATES = [
  (n: number) => `SELECT id, total, status FROM invoices WHERE customer_id = ${n}`,
  (n: number) => `SELECT c.name, sum(i.total) FROM customers c JOIN invoices i ON i.customer_id = c.id WHERE c.id = ${n} GROUP BY c.name`,
  (n: number) => `UPDATE invoices SET paid = true WHERE id = ${n}`,
  (n: number) => `INSERT INTO notes (invoice_id, body) VALUES (${n}, 'checked')`,
  (n: number) => `DELETE FROM sessions WHERE expires_at < now() - interval '${n} days'`,
  (n: number) => `WITH recent AS (SELECT * FROM orders WHERE created_at > now() - interval '${n} hours') SELECT count(*) FROM recent`,
  (n: number) => `SELECT * FROM invoices WHERE id IN (SELECT invoice_id FROM payments WHERE amount > ${n}) LIMIT 50`,
  (n: number) => `/* dashboard ${n} */ SELECT date_trunc('day', created_at), count(*) FROM orders GROUP BY 1 ORDER BY 1 DESC LIMIT ${n % 90}`,
];
const statement = (n: number) => TEMPLATES[n % TEMPLATES.length]!(n);

function inputOf(text: string, n: number): DecisionInput {
  return {
    identity: { id: `agent-${n % 7}`, kind: 'agent', groups: ['etl'] },
    target: { name: 'billing', type: 'postgres', labels: { env: n % 2 ? 'production' : 'staging' } },
    statement: analyseStatement(text),
    command: { protocol: 'postgres', text, multiStatement: false },
    trace: { present: true, confidence: (n % 10) / 10, model: 'm', tags: [] },
    time: new Date(),
    session: {},
  };
}

/** Runs `body` for about `seconds` and returns operations per second and µs per operation. */
function rate(seconds: number, body: (n: number) => void): { perSecond: number; usPer: number; operations: number } {
  // Warm up first: the first calls run before the JIT has compiled anything.
  for (let i = 0, until = performance.now() + 300; performance.now() < until; i++) body(i);
  let n = 0;
  const start = performance.now();
  const until = start + seconds * 1000;
  while (performance.now() < until) for (let i = 0; i < 200; i++) body(n++);
  const elapsed = (performance.now() - start) / 1000;
  return { perSecond: n / elapsed, usPer: (elapsed * 1e6) / n, operations: n };
}

interface InProcessPoint {
  readonly measure: string;
  readonly perSecond: number;
  readonly usPer: number;
}

function inProcess(): InProcessPoint[] {
  const builtin = new PolicyEngine(parsePolicyDocument(BUILTIN_POLICY_YAML, BUILTIN_POLICY_SOURCE).document);
  const examples = new PolicyEngine(readPolicyDirectory(path.join(workspace, 'examples', 'policies')).document);
  const seconds = Math.max(1, SECONDS / 2);
  const points: InProcessPoint[] = [];
  const add = (measure: string, r: { perSecond: number; usPer: number }) => points.push({ measure, perSecond: r.perSecond, usPer: r.usPer });

  add('analyse one SQL statement (libpg_query parse + walk)', rate(seconds, (n) => analyseStatement(statement(n))));
  add('analyse one shell command (mvdan/sh parse + walk)', rate(seconds, (n) => analyseShellCommand(`tail -n ${n % 500} /var/log/app.log | grep -c error`)));
  add('analyse + decide, built-in policy (match fields)', rate(seconds, (n) => builtin.decide(inputOf(statement(n), n))));
  add('analyse + decide, example policies (CEL when)', rate(seconds, (n) => examples.decide(inputOf(statement(n), n))));
  const analysed = Array.from({ length: 4096 }, (_, n) => inputOf(statement(n), n));
  add('decide alone, built-in policy', rate(seconds, (n) => builtin.decide(analysed[n % analysed.length]!)));
  add('decide alone, example policies', rate(seconds, (n) => examples.decide(analysed[n % analysed.length]!)));
  add('CEL: build the input (once per decision that reaches a when)', rate(seconds, (n) => celActivationOf(analysed[n % analysed.length]!)));
  const when = compileCelCondition(`command.kind in ['insert', 'update', 'delete'] && trace.present && trace.confidence < 0.8`);
  const activations = analysed.slice(0, 256).map(celActivationOf);
  add('CEL: one when evaluation (3 clauses)', rate(seconds, (n) => when.evaluate(activations[n % activations.length]!)));
  return points;
}

/**
 * CPU seconds a process has used (user + system, from /proc; Linux clock ticks are 1/100 s). On a
 * shared machine the decisions per second depend on who else runs; the service's CPU per
 * decision does not, and says how many decisions one core of the service can make.
 */
function cpuSecondsOf(pid: number | undefined): number {
  if (pid === undefined) return NaN;
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

interface GrpcPoint {
  /** The service's CPU time per decision during the point, µs (NaN when not measured). */
  readonly serviceCpuUsPerDecision?: number;
  /** Calls made (a batch is one call); mean and p99 are per call. */
  readonly calls: number;
  readonly concurrency: number;
  readonly channels: number;
  readonly decisions: number;
  readonly perSecond: number;
  readonly meanUs: number;
  readonly p99Us: number;
  readonly errors: number;
}

type DecideClient = Client & {
  decide(request: unknown, metadata: Metadata, callback: (error: ServiceError | null, response?: policyV1.DecideResponse) => void): void;
  decideBatch(request: unknown, metadata: Metadata, callback: (error: ServiceError | null, response?: policyV1.DecideBatchResponse) => void): void;
};

/** One connection per client: grpc-js would otherwise share one connection between same-address clients. */
function decideClients(address: string, count: number): DecideClient[] {
  const loaded = loadPackageDefinition(loadSync(SERVICE_PROTOS.policy.files[0], { ...PROTO_LOADER_OPTIONS, includeDirs: [PROTO_ROOT] })) as unknown as {
    tracegate: { policy: { v1: { PolicyService: new (address: string, creds: ReturnType<typeof credentials.createInsecure>, options: object) => DecideClient } } };
  };
  return Array.from({ length: count }, () => new loaded.tracegate.policy.v1.PolicyService(address, credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 }));
}

/** What a load process sends: single Decide calls, ones refused at once, or DecideBatch calls. */
type LoadKind = 'decide' | 'refused' | 'batch';

function decideRequest(n: number, refused: boolean) {
  return {
    identity: refused ? undefined : { id: `agent-${n % 7}`, kind: policyV1.IdentityKind.IDENTITY_KIND_AGENT, groups: ['etl'] },
    target: { name: 'billing', type: 'postgres', labels: { env: n % 2 ? 'production' : 'staging' } },
    command: { protocol: policyV1.Protocol.PROTOCOL_POSTGRES, text: statement(n), fingerprint: '', inMultiStatement: false },
    trace: { present: true, confidence: (n % 10) / 10, model: 'm', tags: [] },
    sessionAttributes: {},
  };
}

async function overGrpc(address: string, concurrency: number, channels: number, kind: LoadKind = 'decide'): Promise<GrpcPoint> {
  const refused = kind === 'refused';
  const clients = decideClients(address, channels);
  const metadata = new Metadata();
  metadata.set(INTERNAL_TOKEN_METADATA, TOKEN);
  const decide = (client: DecideClient, request: unknown) =>
    new Promise<policyV1.DecideResponse>((resolve, reject) => client.decide(request, metadata, (error, response) => (error ? reject(error) : resolve(response!))));
  const decideBatch = (client: DecideClient, request: unknown) =>
    new Promise<policyV1.DecideBatchResponse>((resolve, reject) => client.decideBatch(request, metadata, (error, response) => (error ? reject(error) : resolve(response!))));
  const latencies: number[] = [];
  let errors = 0;
  let decisions = 0;
  let next = 1_000_000 * Math.floor(Math.random() * 1000);
  const until = performance.now() + SECONDS * 1000;
  const worker = async (w: number) => {
    const client = clients[w % channels]!;
    while (performance.now() < until) {
      const started = performance.now();
      try {
        if (kind === 'batch') {
          const requests = Array.from({ length: BATCH }, () => decideRequest(next++, false));
          const { responses } = await decideBatch(client, { requests });
          decisions += responses.length;
        } else {
          await decide(client, decideRequest(next++, refused));
          decisions += 1;
        }
        latencies.push((performance.now() - started) * 1000);
      } catch (error) {
        if (refused && (error as ServiceError).code === 3) {
          decisions += 1;
          latencies.push((performance.now() - started) * 1000);
        } else errors += 1;
      }
    }
  };
  const start = performance.now();
  await Promise.all(Array.from({ length: concurrency }, (_, w) => worker(w)));
  const elapsed = (performance.now() - start) / 1000;
  for (const client of clients) client.close();
  latencies.sort((a, b) => a - b);
  const mean = latencies.reduce((a, b) => a + b, 0) / Math.max(1, latencies.length);
  return {
    calls: latencies.length,
    concurrency,
    channels,
    decisions,
    perSecond: decisions / elapsed,
    meanUs: mean,
    p99Us: latencies[Math.floor(latencies.length * 0.99)] ?? NaN,
    errors,
  };
}

/** Runs `overGrpc` in `loaders` child processes at once and adds their results up. */
async function fromLoaders(address: string, concurrency: number, channels: number, loaders: number, kind: LoadKind = 'decide', servicePid?: number): Promise<GrpcPoint> {
  const self = fileURLToPath(import.meta.url);
  const cpuBefore = cpuSecondsOf(servicePid);
  const share = (total: number, i: number) => Math.floor(total / loaders) + (i < total % loaders ? 1 : 0);
  const runs = Array.from({ length: loaders }, (_, i) => {
    const child = spawn(process.execPath, [self, '--load', address, String(share(concurrency, i)), String(Math.max(1, share(channels, i))), kind], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()));
    return new Promise<GrpcPoint>((resolve, reject) => child.once('exit', (code) => (code === 0 ? resolve(JSON.parse(out) as GrpcPoint) : reject(new Error(`a load process exited with ${code}`)))));
  });
  const points = await Promise.all(runs);
  const decisions = points.reduce((a, p) => a + p.decisions, 0);
  const cpuUsed = cpuSecondsOf(servicePid) - cpuBefore;
  return {
    serviceCpuUsPerDecision: (cpuUsed * 1e6) / Math.max(1, decisions),
    concurrency,
    channels,
    decisions,
    perSecond: points.reduce((a, p) => a + p.perSecond, 0),
    meanUs: points.reduce((a, p) => a + p.meanUs * p.calls, 0) / Math.max(1, points.reduce((a, p) => a + p.calls, 0)),
    calls: points.reduce((a, p) => a + p.calls, 0),
    // The worst loader's p99: an upper bound on the whole run's.
    p99Us: Math.max(...points.map((p) => p.p99Us)),
    errors: points.reduce((a, p) => a + p.errors, 0),
  };
}

async function startPolicyService(databaseUrl: string, policyDir: string | undefined): Promise<{ address: string; child: ChildProcess }> {
  const port = await freePort();
  const child = spawn(process.execPath, [path.join(workspace, 'services', 'policy', 'dist', 'main.js')], {
    env: {
      PATH: process.env.PATH ?? '',
      DATABASE_URL: databaseUrl,
      TRACEGATE_INTERNAL_TOKEN: TOKEN,
      TRACEGATE_POLICY_GRPC_PORT: String(port),
      TRACEGATE_POLICY_METRICS_PORT: String(await freePort()),
      TRACEGATE_LOG_LEVEL: 'warn',
      ...(policyDir && { TRACEGATE_POLICY_DIR: policyDir }),
      // e.g. "--cpu-prof --cpu-prof-dir=/tmp/policy-prof" to see where the service spends a decision.
      ...(process.env.BENCH_SERVICE_NODE_OPTIONS && { NODE_OPTIONS: process.env.BENCH_SERVICE_NODE_OPTIONS }),
    },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const address = `127.0.0.1:${port}`;
  const probe = grpcClient<policyV1.PolicyServiceClient>(SERVICE_PROTOS.policy.files[0], 'tracegate.policy.v1.PolicyService', address, {
    metadata: { [INTERNAL_TOKEN_METADATA]: TOKEN },
    deadlineMs: 2000,
  });
  await pollUntil(
    () =>
      probe
        .decide({
          identity: { id: 'probe', kind: policyV1.IdentityKind.IDENTITY_KIND_HUMAN, groups: [] },
          target: undefined,
          command: { protocol: policyV1.Protocol.PROTOCOL_POSTGRES, text: 'SELECT 1', fingerprint: '', inMultiStatement: false },
          trace: undefined,
          sessionAttributes: {},
        })
        .then(() => true)
        .catch(() => false),
    { description: 'the policy service answering', timeoutMs: 60_000 },
  );
  probe.close();
  return { address, child };
}

/**
 * The same decisions served by a bare grpc-js server (no NestJS), in its own process: what the
 * transport costs without the framework's per-call pipeline. A diagnostic, not a deployment.
 */
async function bareServer(port: number): Promise<void> {
  await loadSqlParser();
  const engine = new PolicyEngine(parsePolicyDocument(BUILTIN_POLICY_YAML, BUILTIN_POLICY_SOURCE).document);
  const version = 'bare';
  const loaded = loadPackageDefinition(loadSync(SERVICE_PROTOS.policy.files[0], { ...PROTO_LOADER_OPTIONS, includeDirs: [PROTO_ROOT] })) as unknown as {
    tracegate: { policy: { v1: { PolicyService: { service: Parameters<Server['addService']>[0] } } } };
  };
  const server = new Server();
  const decide = (request: policyV1.DecideRequest) => {
    const statement = analyseCommand(commandOf(request));
    return decideResponseOf(engine.decide(decisionInputOf(request, statement, new Date())), statement, version);
  };
  server.addService(loaded.tracegate.policy.v1.PolicyService.service, {
    decide: (call: ServerUnaryCall<policyV1.DecideRequest, unknown>, callback: sendUnaryData<unknown>) => {
      try {
        callback(null, decide(call.request));
      } catch (error) {
        callback({ code: error instanceof PolicyError ? GrpcStatus.INVALID_ARGUMENT : GrpcStatus.INTERNAL, details: (error as Error).message });
      }
    },
    decideBatch: (call: ServerUnaryCall<policyV1.DecideBatchRequest, unknown>, callback: sendUnaryData<unknown>) => {
      try {
        callback(null, { responses: call.request.requests.map(decide) });
      } catch (error) {
        callback({ code: error instanceof PolicyError ? GrpcStatus.INVALID_ARGUMENT : GrpcStatus.INTERNAL, details: (error as Error).message });
      }
    },
  });
  await new Promise<void>((resolve, reject) => server.bindAsync(`127.0.0.1:${port}`, ServerCredentials.createInsecure(), (error) => (error ? reject(error) : resolve())));
  process.stdout.write('ready\n');
  await new Promise(() => undefined);
}

async function startBareServer(): Promise<{ address: string; child: ChildProcess }> {
  const port = await freePort();
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), '--bare-server', String(port)], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (chunk: Buffer) => chunk.toString().includes('ready') && resolve());
    child.once('exit', (code) => reject(new Error(`the bare server exited with ${code}`)));
  });
  return { address: `127.0.0.1:${port}`, child };
}

async function main() {
  await loadSqlParser();
  process.stderr.write('in process …\n');
  const local = inProcess();
  const postgres = await startPostgres();
  const grpcPoints: (GrpcPoint & { policy: string; kind: LoadKind })[] = [];
  try {
    for (const [policy, dir] of [
      ['built-in', undefined],
      ['examples/policies', path.join(workspace, 'examples', 'policies')],
    ] as const) {
      const { address, child } = await startPolicyService(await postgres.createDatabase(), dir);
      try {
        process.stderr.write(`gRPC, ${policy} …\n`);
        await fromLoaders(address, CONCURRENCY, CHANNELS, LOADERS); // warm-up: JIT and connections
        grpcPoints.push({ policy, kind: 'decide', ...(await fromLoaders(address, 1, 1, 1, 'decide', child.pid)) });
        grpcPoints.push({ policy, kind: 'decide', ...(await fromLoaders(address, CONCURRENCY, CHANNELS, LOADERS, 'decide', child.pid)) });
        grpcPoints.push({
          policy,
          kind: 'batch',
          ...(await fromLoaders(address, Math.max(LOADERS, Math.ceil((4 * CONCURRENCY) / BATCH)), CHANNELS, LOADERS, 'batch', child.pid)),
        });
        if (policy === 'built-in') grpcPoints.push({ policy, kind: 'refused', ...(await fromLoaders(address, CONCURRENCY, CHANNELS, LOADERS, 'refused', child.pid)) });
      } finally {
        child.kill('SIGTERM');
        await new Promise((resolve) => child.once('exit', resolve));
      }
    }
    const bare = await startBareServer();
    try {
      process.stderr.write('gRPC, bare grpc-js server …\n');
      await fromLoaders(bare.address, CONCURRENCY, CHANNELS, LOADERS);
      grpcPoints.push({ policy: 'built-in, bare grpc-js server (no NestJS)', kind: 'decide', ...(await fromLoaders(bare.address, CONCURRENCY, CHANNELS, LOADERS, 'decide', bare.child.pid)) });
      grpcPoints.push({
        policy: 'built-in, bare grpc-js server (no NestJS)',
        kind: 'batch',
        ...(await fromLoaders(bare.address, Math.max(LOADERS, Math.ceil((4 * CONCURRENCY) / BATCH)), CHANNELS, LOADERS, 'batch', bare.child.pid)),
      });
    } finally {
      bare.child.kill('SIGTERM');
    }
  } finally {
    await postgres.stop();
  }
  report(local, grpcPoints);
}

function report(local: InProcessPoint[], grpc: (GrpcPoint & { policy: string; kind: LoadKind })[]) {
  const kinds: Record<LoadKind, string> = {
    decide: 'Decide',
    batch: `DecideBatch of ${BATCH}`,
    refused: 'Decide refused at once (transport floor)',
  };
  const outDir = path.join(workspace, 'bench', 'results');
  mkdirSync(outDir, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const machine = { cpus: cpus().length, model: cpus()[0]?.model ?? '', node: process.versions.node, secondsPerPoint: SECONDS };
  const json = `${JSON.stringify({ machine, grpc, inProcess: local }, null, 2)}\n`;
  const md = [
    `# policy decisions, ${SECONDS} s per gRPC point, ${machine.cpus} cores (${machine.model}), Node ${machine.node}`,
    '',
    `Over gRPC: the policy service in its own process, load from ${LOADERS} other processes on the same machine; every statement text distinct (what the gateway sends on a decision-cache miss: parse, analyse, decide). Goal: at least 20,000 decisions per second. The machine's load average when this ran: ${loadavg()[0]!.toFixed(1)}; decisions/s falls with it, the service's CPU per decision does not: 1,000,000 / that is what one core of the service decides per second.`,
    '',
    '| policy | call | calls in flight | channels | decisions/s | service CPU µs per decision | decisions/s per service core | mean µs per call | p99 µs per call | errors |',
    '|---|---|---|---|---|---|---|---|---|---|',
    ...grpc.map(
      (p) =>
        `| ${p.policy} | ${kinds[p.kind]} | ${p.concurrency} | ${p.channels} | ${p.perSecond.toFixed(0)} | ${(p.serviceCpuUsPerDecision ?? NaN).toFixed(0)} | ${(1e6 / (p.serviceCpuUsPerDecision ?? NaN)).toFixed(0)} | ${p.meanUs.toFixed(0)} | ${p.p99Us.toFixed(0)} | ${p.errors} |`,
    ),
    '',
    'In process, one core:',
    '',
    '| measure | per second | µs each |',
    '|---|---|---|',
    ...local.map((p) => `| ${p.measure} | ${p.perSecond.toFixed(0)} | ${p.usPer.toFixed(2)} |`),
    '',
  ].join('\n');
  for (const name of [`policy-${stamp}`, 'policy-latest']) {
    writeFileSync(path.join(outDir, `${name}.json`), json);
    writeFileSync(path.join(outDir, `${name}.md`), md);
  }
  process.stdout.write(md);
}

if (process.argv[2] === '--bare-server') {
  await bareServer(Number(process.argv[3]));
} else if (process.argv[2] === '--load') {
  const [address, concurrency, channels, kind] = process.argv.slice(3);
  process.stdout.write(JSON.stringify(await overGrpc(address!, Number(concurrency), Number(channels), kind as LoadKind)));
} else {
  await main();
}
process.exit(0);
