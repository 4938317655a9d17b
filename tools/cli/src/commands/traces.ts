import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { auditV1 } from '@tracegate/contracts';
import { CommandError, isoOf, runCommand, UsageError } from './broker-connection.js';
import { callTraces, traceConnection } from './trace-connection.js';

export const TRACES_USAGE = `usage:
  tracegate traces submit --file trace.json [--json]
      stores a reasoning trace (masked) and prints its id; attach it to statements with
      /*tracegate_trace_id='<id>'*/. --file - reads standard input.
  tracegate traces show <id> [--json]
      a stored trace; needs a reader grant (tracegate grants create …) for this identity

Both act as an identity: TRACEGATE_API_KEY (and TRACEGATE_IDENTITY, the key's name, if set). The trace
file is JSON: {"agent":{"name":…,"model":…,"version":…},"prompt":…,"steps":[{"thought":…,"tool":…,
"input":…,"outputSummary":…}],"confidence":0.9,"sources":[…],"tags":[…],"traceparent":…}.
The audit service is at TRACEGATE_AUDIT_ADDRESS (default 127.0.0.1:7106).
`;

export function tracesCommand(argv: readonly string[], environment: Record<string, string | undefined> = process.env): Promise<number> {
  return runCommand(TRACES_USAGE, async () => {
    const [sub, ...rest] = argv;
    switch (sub) {
      case 'submit':
        return submit(rest, environment);
      case 'show':
        return show(rest, environment);
      case undefined:
      case 'help':
      case '--help':
        process.stdout.write(TRACES_USAGE);
        return sub === undefined ? 2 : 0;
      default:
        throw new UsageError(`unknown traces command '${sub}'`);
    }
  });
}

async function readTraceFile(file: string): Promise<string> {
  try {
    if (file === '-') {
      const chunks: Buffer[] = [];
      for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
      return Buffer.concat(chunks).toString('utf8');
    }
    return await readFile(file, 'utf8');
  } catch (error) {
    throw new CommandError(`cannot read the trace file ${file}: ${(error as NodeJS.ErrnoException).code === 'ENOENT' ? 'it does not exist' : (error as Error).message}`);
  }
}

async function submit(args: readonly string[], environment: Record<string, string | undefined>): Promise<number> {
  const { values } = parseArgs({ args: [...args], strict: true, options: { file: { type: 'string' }, json: { type: 'boolean', default: false } } });
  if (!values.file) throw new UsageError('--file is required: the JSON trace to submit (- for standard input)');
  const traceJson = (await readTraceFile(values.file)).trim();
  if (traceJson === '') throw new CommandError(`the trace file ${values.file} is empty`);
  const connection = traceConnection<auditV1.TraceServiceClient>('TraceService', 'api-key', environment);
  // Sent as the JSON text, so the service checks it field by field and names any mistake.
  const response = await callTraces(connection, (traces) => traces.submit({ trace: undefined, traceJson, identityId: '', identityName: '', sessionId: '', target: '' }));
  if (values.json) process.stdout.write(`${JSON.stringify(auditV1.SubmitResponse.toJSON({ ...response, features: response.features ?? undefined }), null, 2)}\n`);
  else process.stdout.write(`${response.id}\n`);
  return 0;
}

async function show(args: readonly string[], environment: Record<string, string | undefined>): Promise<number> {
  const { values, positionals } = parseArgs({ args: [...args], allowPositionals: true, strict: true, options: { json: { type: 'boolean', default: false } } });
  if (positionals.length !== 1) throw new UsageError(`expected one trace id, got ${positionals.length === 0 ? 'none' : positionals.join(' ')}`);
  const connection = traceConnection<auditV1.TraceServiceClient>('TraceService', 'api-key', environment);
  const { trace, grant, targets } = await callTraces(connection, (traces) => traces.getTrace({ id: positionals[0]! }));
  if (!trace) throw new CommandError(`the audit service returned no trace for '${positionals[0]}'`);
  const plain = forJson(trace);
  if (values.json) {
    process.stdout.write(`${JSON.stringify({ trace: auditV1.Trace.toJSON(plain), grant: grant ? auditV1.ReaderGrant.toJSON(grantForJson(grant)) : undefined, targets }, null, 2)}\n`);
    return 0;
  }
  const agent = plain.agent ? [plain.agent.name, plain.agent.model, plain.agent.version].filter(Boolean).join(' ') : '';
  const facts: [string, string][] = [
    ['trace', plain.id],
    ['submitted by', `${plain.identityName}${plain.sessionId ? ` (inline, session ${plain.sessionId})` : ''}`],
    ['agent', agent || '-'],
    ['created', isoOf(plain.createdAt)],
    ['confidence', String(plain.confidence)],
    ['tags', plain.tags.join(', ') || '-'],
    ['targets', targets.join(', ') || '-'],
    ['traceparent', plain.traceparent || '-'],
    ['read under', grant ? `grant ${grant.id} (expires ${isoOf(grant.expiresAt ?? undefined)})` : '-'],
  ];
  const width = Math.max(...facts.map(([k]) => k.length));
  const lines = facts.map(([k, v]) => `${k.padEnd(width)}  ${v}`);
  lines.push('', 'prompt:', indent(plain.prompt || '(none)'));
  plain.steps.forEach((step, i) => {
    lines.push('', `step ${i + 1}${step.tool ? ` (${step.tool})` : ''}:`);
    if (step.thought) lines.push(indent(`thought: ${step.thought}`));
    if (step.input) lines.push(indent(`input:   ${step.input}`));
    if (step.outputSummary) lines.push(indent(`output:  ${step.outputSummary}`));
  });
  if (plain.sources.length > 0) lines.push('', 'sources:', ...plain.sources.map((s) => indent(s)));
  process.stdout.write(`${lines.join('\n')}\n`);
  return 0;
}

function indent(text: string): string {
  return text.split('\n').map((l) => `  ${l}`).join('\n');
}

// The gRPC loader gives unset message fields as null; ts-proto's JSON methods expect undefined.
function forJson(trace: auditV1.Trace): auditV1.Trace {
  return { ...trace, agent: trace.agent ?? undefined, createdAt: trace.createdAt ?? undefined };
}

export function grantForJson(grant: auditV1.ReaderGrant): auditV1.ReaderGrant {
  return { ...grant, from: grant.from ?? undefined, until: grant.until ?? undefined, expiresAt: grant.expiresAt ?? undefined, createdAt: grant.createdAt ?? undefined, revokedAt: grant.revokedAt ?? undefined };
}
