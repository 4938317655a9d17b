import { parseArgs } from 'node:util';
import { status as GrpcStatus, type ServiceError } from '@grpc/grpc-js';
import { approvalsV1, SERVICE_PROTOS } from '@tracegate/contracts';
import { grpcClient, INTERNAL_TOKEN_METADATA, type PromiseClient } from '@tracegate/runtime';
import { CommandError, internalToken, isoOf, runCommand, table, UsageError } from './broker-connection.js';

export const APPROVALS_USAGE = `usage:
  tracegate approvals list [--state pending|approved|denied|expired|withdrawn|all] [--json]
      approval requests, newest first (pending ones unless --state says otherwise)
  tracegate approvals show <id> [--json]
      one request: who asked, the command, the target, the trace, who approved so far
  tracegate approvals approve <id>
      approve as yourself: TRACEGATE_API_KEY must be your own key (kind human, in the reviewer group)
  tracegate approvals deny <id> --reason "<why>"
      deny as yourself, with the reason the requester reads

The approvals service is at TRACEGATE_APPROVALS_ADDRESS (default 127.0.0.1:7105). list and show
present the internal token (TRACEGATE_INTERNAL_TOKEN or <TRACEGATE_HOME or ./.tracegate>/internal-token),
or TRACEGATE_API_KEY when no token is at hand; approve and deny present only TRACEGATE_API_KEY, so the
verdict is recorded as yours.
`;

/** The metadata key the approvals service reads a reviewer's API key from. */
const API_KEY_METADATA = 'x-tracegate-api-key';

const STATES: Record<string, approvalsV1.ApprovalState> = {
  pending: approvalsV1.ApprovalState.APPROVAL_STATE_PENDING,
  approved: approvalsV1.ApprovalState.APPROVAL_STATE_APPROVED,
  denied: approvalsV1.ApprovalState.APPROVAL_STATE_DENIED,
  expired: approvalsV1.ApprovalState.APPROVAL_STATE_EXPIRED,
  withdrawn: approvalsV1.ApprovalState.APPROVAL_STATE_WITHDRAWN,
  all: approvalsV1.ApprovalState.APPROVAL_STATE_UNSPECIFIED,
};

type Environment = Record<string, string | undefined>;

interface ApprovalsConnection {
  readonly address: string;
  readonly client: PromiseClient<approvalsV1.ApprovalServiceClient>;
}

function addressOf(environment: Environment): string {
  return environment.TRACEGATE_APPROVALS_ADDRESS?.trim() || `127.0.0.1:${environment.TRACEGATE_APPROVALS_GRPC_PORT?.trim() || '7105'}`;
}

function connect(environment: Environment, metadata: Record<string, string>): ApprovalsConnection {
  const address = addressOf(environment);
  const client = grpcClient<approvalsV1.ApprovalServiceClient>(SERVICE_PROTOS.approvals.files[0], 'tracegate.approvals.v1.ApprovalService', address, { metadata, deadlineMs: 15_000 });
  return { address, client };
}

/** Reading: the internal token, or the reviewer's own key when there is no token here. */
function readerConnection(environment: Environment): ApprovalsConnection {
  const apiKey = environment.TRACEGATE_API_KEY?.trim();
  let token: string;
  try {
    token = internalToken(environment);
  } catch (error) {
    if (!apiKey) throw error;
    return connect(environment, { [API_KEY_METADATA]: apiKey });
  }
  return connect(environment, { [INTERNAL_TOKEN_METADATA]: token });
}

/** Deciding: only the reviewer's own key, so the service records who decided. */
function reviewerConnection(environment: Environment, verb: string): ApprovalsConnection {
  const apiKey = environment.TRACEGATE_API_KEY?.trim();
  if (!apiKey) {
    throw new CommandError(
      `to ${verb} a request, set TRACEGATE_API_KEY to your own API key (kind human, in the request's reviewer group); an operator issues one with \`tracegate key create --name <your name> --kind human --group <group>\``,
    );
  }
  return connect(environment, { [API_KEY_METADATA]: apiKey });
}

/** Calls the approvals service and turns a gRPC failure into a sentence for the terminal. */
async function callApprovals<T>(connection: ApprovalsConnection, call: (client: ApprovalsConnection['client']) => Promise<T>): Promise<T> {
  try {
    return await call(connection.client);
  } catch (error) {
    const grpc = error as Partial<ServiceError>;
    if (typeof grpc.code !== 'number') throw error;
    // UNAVAILABLE is also the service's own answer when the broker or the event log is down; that
    // one carries the service's sentence and is shown as is.
    const unreachable = grpc.code === GrpcStatus.DEADLINE_EXCEEDED || (grpc.code === GrpcStatus.UNAVAILABLE && /no connection established|connection dropped|failed to connect/i.test(grpc.details ?? ''));
    if (unreachable) {
      throw new CommandError(
        `cannot reach the approvals service at ${connection.address} (${grpc.details || 'unavailable'}); is tracegate running? Set TRACEGATE_APPROVALS_ADDRESS if it runs elsewhere`,
      );
    }
    throw new CommandError(grpc.details || `the approvals service answered ${GrpcStatus[grpc.code] ?? grpc.code}`);
  } finally {
    connection.client.close();
  }
}

export function approvalsCommand(argv: readonly string[], environment: Environment = process.env): Promise<number> {
  return runCommand(APPROVALS_USAGE, async () => {
    const [sub, ...rest] = argv;
    switch (sub) {
      case 'list':
        return list(rest, environment);
      case 'show':
        return show(rest, environment);
      case 'approve':
        return decide(rest, environment, 'approve');
      case 'deny':
        return decide(rest, environment, 'deny');
      case undefined:
      case 'help':
      case '--help':
        process.stdout.write(APPROVALS_USAGE);
        return sub === undefined ? 2 : 0;
      default:
        throw new UsageError(`unknown approvals command '${sub}'`);
    }
  });
}

async function list(args: readonly string[], environment: Environment): Promise<number> {
  const { values } = parseArgs({ args: [...args], strict: true, options: { state: { type: 'string', default: 'pending' }, json: { type: 'boolean', default: false } } });
  const state = STATES[values.state!];
  if (state === undefined) throw new UsageError(`--state '${values.state}' is not one of ${Object.keys(STATES).join(', ')}`);
  const { requests } = await callApprovals(readerConnection(environment), (approvals) => approvals.list({ state }));
  if (values.json) {
    process.stdout.write(`${JSON.stringify(approvalsV1.ListResponse.toJSON({ requests: requests.map(forJson) }), null, 2)}\n`);
    return 0;
  }
  if (requests.length === 0) {
    process.stdout.write(values.state === 'all' ? 'no approval requests yet\n' : `no ${values.state} approval requests\n`);
    return 0;
  }
  const rows = requests.map((r) => [r.id, stateName(r.state), r.requesterName || r.requesterId, r.target, r.reviewerGroup, `${r.approvers.length}/${r.quorum}`, isoOf(r.expiresAt ?? undefined), oneLine(r.maskedCommand, 60)]);
  process.stdout.write(table(['ID', 'STATE', 'REQUESTER', 'TARGET', 'GROUP', 'APPROVALS', 'EXPIRES', 'COMMAND'], rows));
  return 0;
}

async function show(args: readonly string[], environment: Environment): Promise<number> {
  const { values, positionals } = parseArgs({ args: [...args], allowPositionals: true, strict: true, options: { json: { type: 'boolean', default: false } } });
  const id = oneId(positionals);
  const { request } = await callApprovals(readerConnection(environment), (approvals) => approvals.get({ id }));
  if (!request) throw new CommandError(`the approvals service returned no request for '${id}'`);
  print(request, values.json ?? false);
  return 0;
}

async function decide(args: readonly string[], environment: Environment, verb: 'approve' | 'deny'): Promise<number> {
  const { values, positionals } = parseArgs({
    args: [...args],
    allowPositionals: true,
    strict: true,
    options: { reason: { type: 'string', default: '' }, json: { type: 'boolean', default: false } },
  });
  const id = oneId(positionals);
  if (verb === 'deny' && !values.reason?.trim()) throw new UsageError('deny needs --reason "<why>": the requester reads it');
  const verdict = verb === 'approve' ? approvalsV1.Verdict.VERDICT_APPROVE : approvalsV1.Verdict.VERDICT_DENY;
  const { request } = await callApprovals(reviewerConnection(environment, verb), (approvals) => approvals.decide({ id, reviewerId: '', verdict, reason: values.reason ?? '' }));
  if (!request) throw new CommandError(`the approvals service returned no request for '${id}'`);
  if (!values.json) {
    const pending = request.state === approvalsV1.ApprovalState.APPROVAL_STATE_PENDING;
    const missing = request.quorum - request.approvers.length;
    process.stdout.write(
      pending
        ? `approved; request ${request.id} needs ${missing} more approval${missing === 1 ? '' : 's'} from '${request.reviewerGroup}'\n`
        : `request ${request.id} is now ${stateName(request.state)}\n`,
    );
  }
  print(request, values.json ?? false);
  return 0;
}

function print(request: approvalsV1.ApprovalRequest, json: boolean): void {
  if (json) {
    process.stdout.write(`${JSON.stringify(approvalsV1.ApprovalRequest.toJSON(forJson(request)), null, 2)}\n`);
    return;
  }
  const facts: [string, string][] = [
    ['request', request.id],
    ['state', stateName(request.state) + (request.reason ? ` (${request.reason})` : '')],
    ['requester', request.requesterName ? `${request.requesterName} (key ${request.requesterId})` : request.requesterId],
    ['target', request.target],
    ['command', request.maskedCommand],
    ['rule', request.rule || '-'],
    ['trace', request.traceId || '-'],
    ['session', request.sessionId || '-'],
    ['reviewers', `'${request.reviewerGroup}', ${request.quorum} approval${request.quorum === 1 ? '' : 's'} needed`],
    ['approved by', request.approvers.join(', ') || '-'],
    ...(request.decidedBy ? [['decided by', request.decidedBy] as [string, string]] : []),
    ['requested', isoOf(request.createdAt ?? undefined)],
    ['expires', isoOf(request.expiresAt ?? undefined)],
    ...(request.finishedAt ? [['finished', isoOf(request.finishedAt)] as [string, string]] : []),
  ];
  const width = Math.max(...facts.map(([k]) => k.length));
  process.stdout.write(facts.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join('\n') + '\n');
}

function oneId(positionals: readonly string[]): string {
  if (positionals.length !== 1) throw new UsageError(`expected one request id, got ${positionals.length === 0 ? 'none' : positionals.join(' ')}`);
  return positionals[0]!;
}

function stateName(state: approvalsV1.ApprovalState): string {
  return Object.entries(STATES).find(([, s]) => s === state)?.[0] ?? 'unknown';
}

function oneLine(text: string, max: number): string {
  const line = text.replace(/\s+/g, ' ').trim();
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
}

// The gRPC loader gives unset message fields as null; ts-proto's JSON methods expect undefined.
function forJson(r: approvalsV1.ApprovalRequest): approvalsV1.ApprovalRequest {
  return { ...r, createdAt: r.createdAt ?? undefined, expiresAt: r.expiresAt ?? undefined, finishedAt: r.finishedAt ?? undefined };
}
