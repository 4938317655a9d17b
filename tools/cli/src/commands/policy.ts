import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { status as GrpcStatus, type ServiceError } from '@grpc/grpc-js';
import { policyV1, SERVICE_PROTOS } from '@tracegate/contracts';
import { grpcClient, INTERNAL_TOKEN_METADATA, type PromiseClient } from '@tracegate/runtime';
import { BUILTIN_POLICY_SOURCE, BUILTIN_POLICY_YAML } from '@tracegate/policy/domain/builtin-policy';
import { IDENTITY_KINDS, parsePolicyDocument, type ActivePolicy, type IdentityKindName } from '@tracegate/policy/domain/policy-document';
import { PolicyEngine, type DecisionInput } from '@tracegate/policy/domain/policy-engine';
import { PolicyError } from '@tracegate/policy/domain/policy-error';
import { parsePolicyExamples, runPolicyExamples, type ExampleResult } from '@tracegate/policy/domain/policy-examples';
import { analyseShellCommand } from '@tracegate/policy/domain/shell-analysis';
import { analyseStatement, loadSqlParser } from '@tracegate/policy/domain/sql-analysis';
import { readPolicyDirectory, readPolicyFile } from '@tracegate/policy/repositories/policy-file.repository';
import { CommandError, internalToken, isoOf, runCommand, table, UsageError } from './broker-connection.js';

export const POLICY_USAGE = `usage:
  tracegate policy lint <dir|file>
      validate a policy directory (every *.yaml but *.tests.yaml, read as one policy) or one
      document, and the examples beside it; every problem is named with file:line:col and rule
  tracegate policy test <dir|file>
      run the table-driven examples beside the policy (*.tests.yaml; for a file x.yaml, x.tests.yaml)
  tracegate policy test [<dir|file>] --identity kind:agent,groups:a|b[,id:ID]
      [--target name:prod,type:postgres,labels:env=production|tier=gold]
      (--sql "..." | --shell "...") [--trace confidence:0.5,model:M,tags:a|b]
      [--session key=value,...] [--time 2026-01-05T12:00:00Z] [--explain] [--json]
      decide one command, offline (against the built-in policy when no path is given)

  tracegate policy publish <file> [--author NAME] [--comment TEXT]
      validate a policy document here, then publish it to the running policy service, which puts it
      in force (author defaults to $USER)
  tracegate policy versions [--limit N] [--json]
      the versions put in force, newest first: who, when, what changed

lint and test run here, without a running tracegate: the policy engine is the service's own.
publish and versions talk to the policy service at TRACEGATE_POLICY_ADDRESS (default
127.0.0.1:<TRACEGATE_POLICY_GRPC_PORT or 7102>) with TRACEGATE_INTERNAL_TOKEN or
<TRACEGATE_HOME or ./.tracegate>/internal-token.
`;

export function policyCommand(argv: readonly string[], environment: Record<string, string | undefined> = process.env): Promise<number> {
  return runCommand(POLICY_USAGE, async () => {
    const [sub, ...rest] = argv;
    switch (sub) {
      case 'lint':
        return lint(rest);
      case 'test':
        return test(rest);
      case 'publish':
        return publish(rest, environment);
      case 'versions':
        return versions(rest, environment);
      case undefined:
      case 'help':
      case '--help':
        process.stdout.write(POLICY_USAGE);
        return sub === undefined ? 2 : 0;
      default:
        throw new UsageError(`unknown policy command '${sub}'`);
    }
  });
}

/** The policy at a path: a directory of documents or one document. PolicyErrors become the command's error. */
function loadPolicy(path: string): ActivePolicy {
  if (!existsSync(path)) throw new CommandError(`${path} does not exist; give a policy directory or a policy YAML file`);
  try {
    return statSync(path).isDirectory() ? readPolicyDirectory(path) : readPolicyFile(path);
  } catch (error) {
    if (error instanceof PolicyError) throw new CommandError(error.message);
    throw error;
  }
}

/** The examples files that belong to a policy path. */
function exampleFiles(path: string): string[] {
  if (statSync(path).isDirectory()) {
    return readdirSync(path)
      .filter((name) => /\.tests\.ya?ml$/.test(name))
      .sort()
      .map((name) => join(path, name));
  }
  const stem = basename(path).replace(/\.ya?ml$/, '');
  return [join(dirname(path), `${stem}.tests.yaml`), join(dirname(path), `${stem}.tests.yml`)].filter((file) => existsSync(file));
}

function loadExamples(path: string) {
  const problems: string[] = [];
  const examples = exampleFiles(path).flatMap((file) => {
    try {
      return parsePolicyExamples(readFileSync(file, 'utf8'), file);
    } catch (error) {
      if (!(error instanceof PolicyError)) throw error;
      problems.push(error.message);
      return [];
    }
  });
  if (problems.length > 0) throw new CommandError(problems.join('\n'));
  return examples;
}

async function lint(args: readonly string[]): Promise<number> {
  const { positionals } = parseArgs({ args: [...args], allowPositionals: true, strict: true, options: {} });
  const [path] = positionals;
  if (path === undefined || positionals.length > 1) throw new UsageError('policy lint takes one policy directory or file');
  await loadSqlParser();
  const policy = loadPolicy(path);
  const examples = loadExamples(path);
  process.stdout.write(
    `${path}: valid; ${policy.document.rules.length} rules, version ${policy.version}` +
      (examples.length > 0 ? `; ${examples.length} examples read (run them with tracegate policy test ${path})` : '') +
      '\n',
  );
  return 0;
}

async function test(args: readonly string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: [...args],
    allowPositionals: true,
    strict: true,
    options: {
      identity: { type: 'string' },
      target: { type: 'string' },
      sql: { type: 'string' },
      shell: { type: 'string' },
      trace: { type: 'string' },
      session: { type: 'string' },
      time: { type: 'string' },
      explain: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
    },
  });
  if (positionals.length > 1) throw new UsageError('policy test takes at most one policy directory or file');
  const [path] = positionals;
  await loadSqlParser();
  const oneOff = values.identity !== undefined || values.sql !== undefined || values.shell !== undefined;
  if (!oneOff) {
    if (path === undefined) throw new UsageError('policy test needs a policy directory or file, or a command to decide (--identity with --sql or --shell)');
    return runExamples(path, values.json ?? false);
  }
  const policy = path === undefined ? parsePolicyDocument(BUILTIN_POLICY_YAML, BUILTIN_POLICY_SOURCE) : loadPolicy(path);
  const engine = new PolicyEngine(policy.document);
  const input = oneOffInput(values);
  if (values.explain) {
    const { decision, evaluations } = engine.explain(input);
    if (values.json) process.stdout.write(`${JSON.stringify({ policyVersion: policy.version, decision, analysis: input.statement, evaluations }, null, 2)}\n`);
    else {
      process.stdout.write(describeDecision(decision, input, policy));
      for (const evaluation of evaluations) process.stdout.write(`  ${evaluation.matched ? '✔' : '·'} ${evaluation.rule} (${evaluation.priority}): ${evaluation.detail}\n`);
    }
    return 0;
  }
  const decision = engine.decide(input);
  if (values.json) process.stdout.write(`${JSON.stringify({ policyVersion: policy.version, decision, analysis: input.statement }, null, 2)}\n`);
  else process.stdout.write(describeDecision(decision, input, policy));
  return 0;
}

function runExamples(path: string, json: boolean): number {
  const policy = loadPolicy(path);
  const examples = loadExamples(path);
  if (examples.length === 0) throw new CommandError(`no examples beside ${path}: add a *.tests.yaml (tests: - name, identity, sql or shell, expect)`);
  const results = runPolicyExamples(new PolicyEngine(policy.document), examples);
  const failed = results.filter((result) => result.mismatches.length > 0);
  if (json) {
    process.stdout.write(
      `${JSON.stringify(
        results.map((r) => ({ at: r.example.at, name: r.example.name, effect: r.decision.effect, rule: r.decision.rule, mismatches: r.mismatches })),
        null,
        2,
      )}\n`,
    );
  } else {
    for (const result of results) process.stdout.write(describeResult(result));
    process.stdout.write(`${results.length} examples: ${results.length - failed.length} passed, ${failed.length} failed (policy ${policy.version})\n`);
  }
  return failed.length === 0 ? 0 : 1;
}

function describeResult({ example, decision, mismatches }: ExampleResult): string {
  if (mismatches.length === 0) return `✔ ${example.at} ${example.name} (${decision.effect} by ${decision.rule})\n`;
  return `✖ ${example.at} ${example.name}: ${mismatches.join('; ')}\n`;
}

function describeDecision(decision: ReturnType<PolicyEngine['decide']>, input: DecisionInput, policy: ActivePolicy): string {
  const s = input.statement;
  const lines = [
    `${decision.effect} by rule ${decision.rule} (policy ${policy.version} from ${policy.source})`,
    `  reason: ${decision.reason}`,
    ...(decision.review ? [`  review: group ${decision.review.group}, quorum ${decision.review.quorum}, timeout ${decision.review.timeoutSeconds}s`] : []),
    ...(decision.maskingProfile ? [`  masking profile: ${decision.maskingProfile}`] : []),
    `  depends on: ${decision.dependsOn.join(', ')}`,
    `  analysis: kind ${s.kind}${s.opaque ? ` (opaque: ${s.opaqueReason})` : ''}` +
      (s.reads.length ? `; reads ${s.reads.join(', ')}` : '') +
      (s.writes.length ? `; writes ${s.writes.join(', ')}` : '') +
      (s.functions.length ? `; functions ${s.functions.join(', ')}` : '') +
      (s.programs?.length ? `; programs ${s.programs.join(', ')}` : '') +
      (s.hasWhere !== undefined ? `; has_where ${s.hasWhere}` : '') +
      (s.flags.length ? `; flags ${s.flags.join(', ')}` : ''),
  ];
  return `${lines.join('\n')}\n`;
}

/** `kind:agent,groups:a|b`: comma-separated key:value pairs; list values separated by |. */
function pairs(option: string, text: string | undefined, known: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  if (text === undefined) return out;
  for (const part of text.split(',')) {
    const at = part.indexOf(':');
    const key = at < 0 ? '' : part.slice(0, at).trim();
    if (!known.includes(key)) throw new UsageError(`--${option} ${text}: '${part}' is not one of ${known.map((k) => `${k}:…`).join(', ')}`);
    out.set(key, part.slice(at + 1).trim());
  }
  return out;
}

const listOf = (value: string | undefined) => (value ? value.split('|').filter((item) => item !== '') : []);

function oneOffInput(values: { identity?: string; target?: string; sql?: string; shell?: string; trace?: string; session?: string; time?: string }): DecisionInput {
  if (values.identity === undefined) throw new UsageError('--identity is required to decide a command: e.g. --identity kind:agent,groups:etl');
  if ((values.sql === undefined) === (values.shell === undefined)) throw new UsageError('give exactly one of --sql or --shell: the command to decide');
  const identity = pairs('identity', values.identity, ['kind', 'groups', 'id']);
  const kind = identity.get('kind');
  if (!(IDENTITY_KINDS as readonly (string | undefined)[]).includes(kind)) throw new UsageError(`--identity needs kind:${IDENTITY_KINDS.join('|')}`);
  const target = pairs('target', values.target, ['name', 'type', 'labels']);
  const labels: Record<string, string> = {};
  for (const label of listOf(target.get('labels'))) {
    const at = label.indexOf('=');
    if (at <= 0) throw new UsageError(`--target labels: '${label}' is not key=value`);
    labels[label.slice(0, at)] = label.slice(at + 1);
  }
  const trace = pairs('trace', values.trace, ['confidence', 'model', 'tags']);
  const confidence = Number(trace.get('confidence') ?? 1);
  if (values.trace !== undefined && !(confidence >= 0 && confidence <= 1)) throw new UsageError('--trace confidence must be a number from 0 to 1');
  const session: Record<string, string> = {};
  for (const entry of values.session ? values.session.split(',') : []) {
    const at = entry.indexOf('=');
    if (at <= 0) throw new UsageError(`--session: '${entry}' is not key=value`);
    session[entry.slice(0, at)] = entry.slice(at + 1);
  }
  const time = values.time === undefined ? new Date() : new Date(values.time);
  if (Number.isNaN(time.getTime())) throw new UsageError(`--time '${values.time}' is not a date and time, e.g. 2026-01-05T12:00:00Z`);
  const sql = values.sql !== undefined;
  const text = (sql ? values.sql : values.shell)!;
  return {
    identity: { id: identity.get('id') ?? 'cli', kind: kind as IdentityKindName, groups: listOf(identity.get('groups')) },
    target: { name: target.get('name') ?? '', type: target.get('type') ?? (sql ? 'postgres' : 'ssh'), labels },
    statement: sql ? analyseStatement(text) : analyseShellCommand(text),
    command: { protocol: sql ? 'postgres' : 'ssh', text, multiStatement: false },
    trace: values.trace !== undefined ? { present: true, confidence, model: trace.get('model') ?? '', tags: listOf(trace.get('tags')) } : { present: false, confidence: 0, model: '', tags: [] },
    time,
    session,
  };
}

interface PolicyConnection {
  readonly address: string;
  readonly client: PromiseClient<policyV1.PolicyServiceClient>;
}

function policyConnection(environment: Record<string, string | undefined>): PolicyConnection {
  const address = environment.TRACEGATE_POLICY_ADDRESS?.trim() || `127.0.0.1:${environment.TRACEGATE_POLICY_GRPC_PORT?.trim() || '7102'}`;
  const client = grpcClient<policyV1.PolicyServiceClient>(SERVICE_PROTOS.policy.files[0], 'tracegate.policy.v1.PolicyService', address, {
    metadata: { [INTERNAL_TOKEN_METADATA]: internalToken(environment) },
    deadlineMs: 15_000,
  });
  return { address, client };
}

/** Calls the policy service and turns a gRPC failure into a sentence for the terminal. */
async function callPolicy<T>(connection: PolicyConnection, call: (client: PolicyConnection['client']) => Promise<T>): Promise<T> {
  try {
    return await call(connection.client);
  } catch (error) {
    const grpc = error as Partial<ServiceError>;
    if (typeof grpc.code !== 'number') throw error;
    if (grpc.code === GrpcStatus.UNAVAILABLE || grpc.code === GrpcStatus.DEADLINE_EXCEEDED) {
      throw new CommandError(
        `cannot reach the policy service at ${connection.address} (${grpc.details || 'unavailable'}); is tracegate running? Set TRACEGATE_POLICY_ADDRESS if it runs elsewhere`,
      );
    }
    throw new CommandError(grpc.details || `the policy service answered ${GrpcStatus[grpc.code] ?? grpc.code}`);
  } finally {
    connection.client.close();
  }
}

const changeSummary = (changes: policyV1.PolicyChanges | undefined): string => {
  if (!changes) return 'nothing';
  const parts = [
    ...(changes.addedRules.length ? [`added ${changes.addedRules.join(', ')}`] : []),
    ...(changes.removedRules.length ? [`removed ${changes.removedRules.join(', ')}`] : []),
    ...(changes.changedRules.length ? [`changed ${changes.changedRules.join(', ')}`] : []),
    ...(changes.defaultsChanged ? ['defaults changed'] : []),
  ];
  return parts.length ? parts.join('; ') : 'nothing';
};

async function publish(args: readonly string[], environment: Record<string, string | undefined>): Promise<number> {
  const { values, positionals } = parseArgs({
    args: [...args],
    allowPositionals: true,
    strict: true,
    options: { author: { type: 'string' }, comment: { type: 'string', default: '' } },
  });
  const [file] = positionals;
  if (file === undefined || positionals.length > 1) throw new UsageError('policy publish takes one policy document (a YAML file)');
  if (!existsSync(file) || statSync(file).isDirectory()) throw new CommandError(`${file} is not a file; publish one policy document (a directory is read by TRACEGATE_POLICY_DIR instead)`);
  const author = values.author?.trim() || environment.USER?.trim();
  if (!author) throw new UsageError('say who publishes: --author NAME (or set USER)');
  await loadSqlParser();
  // Checked here first, so a mistake is named against the file the author edits.
  const policy = loadPolicy(file);
  const response = await callPolicy(policyConnection(environment), (client) =>
    client.publishPolicy({ document: readFileSync(file, 'utf8'), author, comment: values.comment ?? '' }),
  );
  process.stdout.write(
    response.changed
      ? `published ${response.version} (${policy.document.rules.length} rules) as ${author}: ${changeSummary(response.changes)}\n`
      : `${response.version} is already in force; nothing published\n`,
  );
  return 0;
}

async function versions(args: readonly string[], environment: Record<string, string | undefined>): Promise<number> {
  const { values } = parseArgs({ args: [...args], strict: true, options: { limit: { type: 'string' }, json: { type: 'boolean', default: false } } });
  const limit = values.limit === undefined ? 0 : Number(values.limit);
  if (!Number.isInteger(limit) || limit < 0 || limit > 1000) throw new UsageError(`--limit ${values.limit} is not a whole number from 1 to 1000`);
  const response = await callPolicy(policyConnection(environment), (client) => client.listPolicyVersions({ limit, includeDocuments: false }));
  if (values.json) {
    process.stdout.write(`${JSON.stringify(response.versions.map((v) => ({ ...v, activatedAt: isoOf(v.activatedAt) })), null, 2)}\n`);
    return 0;
  }
  process.stdout.write(
    table(
      ['', 'VERSION', 'ACTIVATED', 'SOURCE', 'CHANGES', 'COMMENT'],
      response.versions.map((v) => [v.inForce ? '*' : '', v.version.slice(0, 19), isoOf(v.activatedAt), v.source, changeSummary(v.changes), v.comment]),
    ),
  );
  return 0;
}
