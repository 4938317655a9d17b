#!/usr/bin/env node
// An example agent that needs no language model: its "reasoning" is scripted. It does what a real
// agent does with tracegate — submits a reasoning trace for each step over gRPC
// (tracegate.audit.v1.TraceService/Submit, authenticated with its API key), then runs the step's
// statement through the gateway with node-postgres, the trace attached as a sqlcommenter comment:
//
//   SELECT … FROM invoices /*tracegate_trace_id='t-…'*/
//
// The scenario, against the tables in seed.sql: a read, a read whose e-mail column comes back
// masked, a DROP TABLE that policy refuses, and an UPDATE held for a human's approval.
//
//   TRACEGATE_IDENTITY=billing-bot TRACEGATE_API_KEY=tg_… npx node examples/agent/run.mjs
//
// Settings (environment):
//   TRACEGATE_IDENTITY, TRACEGATE_API_KEY  the agent's API key and its name (required)
//   TRACEGATE_GATEWAY              gateway Postgres listener, host:port (127.0.0.1:15432)
//   TRACEGATE_TARGET               target name = database name at the gateway (billing)
//   TRACEGATE_AUDIT_ADDRESS        audit service gRPC, host:port (127.0.0.1:7106)
//   TRACEGATE_GATEWAY_CA_FILE      PEM of the gateway's certificate authority; without it the
//                                  certificate is not verified (the all-in-one's is self-signed)
//   TRACEGATE_GATEWAY_SSL          'disable' for a gateway that allows plaintext
//   TRACEGATE_APPROVAL_WAIT_SECONDS how long to wait for the held UPDATE's approval (30)
//
// It exits 0 when every step behaved as the default policy says it should, 1 otherwise.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';
import pg from 'pg';

const env = process.env;

function setting(name, fallback) {
  const value = env[name]?.trim();
  if (value) return value;
  if (fallback !== undefined) return fallback;
  process.stderr.write(`example agent: set ${name} (see the top of examples/agent/run.mjs)\n`);
  process.exit(2);
}

const identity = setting('TRACEGATE_IDENTITY');
const apiKey = setting('TRACEGATE_API_KEY');
const [gatewayHost, gatewayPort] = setting('TRACEGATE_GATEWAY', '127.0.0.1:15432').split(':');
const target = setting('TRACEGATE_TARGET', 'billing');
const auditAddress = setting('TRACEGATE_AUDIT_ADDRESS', '127.0.0.1:7106');
const approvalWaitMs = Number(setting('TRACEGATE_APPROVAL_WAIT_SECONDS', '30')) * 1000;
const caFile = env.TRACEGATE_GATEWAY_CA_FILE?.trim();

const AGENT = { name: identity, model: 'scripted', version: '1.0.0' };

/** Each step: what the agent "thought", the statement, and what the default policy does with it. */
const STEPS = [
  {
    name: 'read',
    expect: 'rows',
    sql: 'SELECT id, customer_id, total, status FROM invoices WHERE status = $1 ORDER BY id',
    params: ['open'],
    trace: {
      prompt: 'Which invoices are still open?',
      steps: [{ thought: 'List the open invoices to see what is owed.', tool: 'postgres', input: 'invoices where status = open', outputSummary: '' }],
      confidence: 0.95,
      tags: ['read-only', 'billing'],
    },
  },
  {
    name: 'masked read',
    expect: 'rows',
    sql: 'SELECT id, name, email FROM customers ORDER BY id',
    params: [],
    trace: {
      prompt: 'Who do the open invoices belong to?',
      steps: [{ thought: 'Look up the customers; I only need names, e-mails come back masked.', tool: 'postgres', input: 'customers', outputSummary: '' }],
      confidence: 0.9,
      tags: ['read-only', 'pii'],
    },
  },
  {
    name: 'blocked DROP',
    expect: 'refused',
    sql: 'DROP TABLE invoices',
    params: [],
    trace: {
      prompt: 'Clean up the invoices table.',
      steps: [{ thought: 'The table looks stale; dropping it would be quickest.', tool: 'postgres', input: 'DROP TABLE invoices', outputSummary: '' }],
      confidence: 0.31,
      tags: ['ddl', 'destructive'],
    },
  },
  {
    name: 'write held for approval',
    expect: 'held',
    sql: "UPDATE invoices SET status = 'paid' WHERE id = $1",
    params: [1],
    trace: {
      prompt: 'Invoice 1 was paid by bank transfer this morning; mark it paid.',
      steps: [{ thought: 'The bank statement shows 120.00 from Ada Lovelace; invoice 1 is 120.00.', tool: 'postgres', input: 'UPDATE invoices SET status = paid WHERE id = 1', outputSummary: '' }],
      confidence: 0.8,
      sources: ['bank statement 2026-11-22'],
      tags: ['write', 'billing'],
    },
  },
];

function traceService() {
  const definition = protoLoader.loadSync('tracegate/audit/v1/audit.proto', {
    includeDirs: [fileURLToPath(new URL('../../proto/', import.meta.url))],
    keepCase: false,
    longs: Number,
    enums: Number,
    defaults: true,
    oneofs: true,
  });
  const { TraceService } = grpc.loadPackageDefinition(definition).tracegate.audit.v1;
  return new TraceService(auditAddress, grpc.credentials.createInsecure());
}

/** TraceService.Submit with the agent's own API key: the trace belongs to this identity. */
function submitTrace(client, trace) {
  const metadata = new grpc.Metadata();
  metadata.set('x-tracegate-identity', identity);
  metadata.set('x-tracegate-api-key', apiKey);
  return new Promise((resolve, reject) =>
    client.submit({ trace: { agent: AGENT, ...trace } }, metadata, { deadline: Date.now() + 10_000 }, (error, response) => (error ? reject(error) : resolve(response.id))),
  );
}

function gatewayClient() {
  const ssl = env.TRACEGATE_GATEWAY_SSL === 'disable' ? false : caFile ? { ca: readFileSync(caFile, 'utf8') } : { rejectUnauthorized: false };
  return new pg.Client({ host: gatewayHost, port: Number(gatewayPort), database: target, user: identity, password: apiKey, ssl, application_name: 'tracegate-example-agent' });
}

/** Runs one step on its own connection, so a held statement keeps only its own session waiting. */
async function runStep(traces, step) {
  const traceId = await submitTrace(traces, step.trace);
  const client = gatewayClient();
  let heldAs;
  client.on('notice', (notice) => {
    const match = /held for approval \(request ([^)]+)\)/.exec(notice.message ?? '');
    if (match) {
      heldAs = match[1];
      console.log(`  held for approval as request ${heldAs}; a reviewer runs: tracegate approvals approve ${heldAs}`);
    }
  });
  client.on('error', () => {}); // a connection ended below while waiting is reported by the query
  await client.connect();
  const text = `${step.sql} /*tracegate_trace_id='${traceId}'*/`;
  console.log(`\n${step.name}: ${step.sql}\n  trace ${traceId}`);
  let timer;
  try {
    const waited = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error('timeout')), step.expect === 'held' ? approvalWaitMs : 60_000);
    });
    const result = await Promise.race([client.query(text, step.params), waited]);
    for (const row of result.rows ?? []) console.log(`  ${JSON.stringify(row)}`);
    console.log(`  ${result.command} ${result.rowCount ?? 0}${heldAs ? ` (approved, request ${heldAs})` : ''}`);
    return step.expect === 'rows' || (step.expect === 'held' && heldAs !== undefined) ? 'as expected' : 'ran, but policy should have stopped it';
  } catch (error) {
    if (error.message === 'timeout') {
      // Disconnecting withdraws the held request: nothing runs after the agent has gone.
      console.log(`  no decision within ${approvalWaitMs / 1000} s; disconnecting withdraws the request`);
      return heldAs ? 'as expected' : 'timed out without being held';
    }
    console.log(`  refused: ${error.code ?? ''} ${error.message}`);
    if (step.expect === 'refused') return 'as expected';
    if (step.expect === 'held' && heldAs) return 'as expected';
    return 'refused unexpectedly';
  } finally {
    clearTimeout(timer);
    await client.end().catch(() => {});
  }
}

const traces = traceService();
let failures = 0;
try {
  for (const step of STEPS) {
    let outcome;
    try {
      outcome = await runStep(traces, step);
    } catch (error) {
      outcome = `failed: ${error.details ?? error.message}`;
    }
    if (outcome !== 'as expected') failures += 1;
    console.log(`  => ${outcome}`);
  }
} finally {
  traces.close();
}
console.log(failures === 0 ? '\nevery step behaved as the policy says' : `\n${failures} step(s) did not behave as expected`);
process.exitCode = failures === 0 ? 0 : 1;
