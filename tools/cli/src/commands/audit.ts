import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { finished } from 'node:stream/promises';
import { parseArgs } from 'node:util';
import { auditV1, SERVICE_PROTOS, timestampOf } from '@tracegate/contracts';
import { grpcClient } from '@tracegate/runtime';
import { ProgressLine } from '../progress.js';
import { CommandError, isoOf, runCommand, UsageError } from './broker-connection.js';
import { auditConnection, auditFailure, sessionForJson, statementForJson } from './sessions.js';
import { apiKeyMetadata } from './trace-connection.js';

export const AUDIT_USAGE = `usage:
  tracegate audit rebuild [--json]
      replays tracegate.sessions.v1 from the beginning into a fresh projection while the current
      one keeps answering, then switches reads over to it; shows progress on a terminal
  tracegate audit export --since <ISO time> [--until <ISO time>] [--format jsonl] [--output FILE]
      exports the sessions started from --since until --until (default now) with their
      statements as the audit trail has them (masked text, parameters and result rows), one JSON
      object per session and line, to stdout or FILE (written only once complete). It needs an
      approval: it acts as TRACEGATE_API_KEY's identity, prints the approval request's id on
      stderr and waits until another member of the reviewer group (default auditors) approves it
      with \`tracegate approvals approve <id>\`; a denied or expired request exports nothing

The audit service is at TRACEGATE_AUDIT_ADDRESS (default 127.0.0.1:7106); the internal token comes
from TRACEGATE_INTERNAL_TOKEN or <TRACEGATE_HOME or ./.tracegate>/internal-token (rebuild).
`;

export function auditCommand(argv: readonly string[], environment: Record<string, string | undefined> = process.env): Promise<number> {
  return runCommand(AUDIT_USAGE, async () => {
    const [sub, ...rest] = argv;
    switch (sub) {
      case 'rebuild':
        return rebuild(rest, environment);
      case 'export':
        return exportSessions(rest, environment);
      case undefined:
      case 'help':
      case '--help':
        process.stdout.write(AUDIT_USAGE);
        return sub === undefined ? 2 : 0;
      default:
        throw new UsageError(`unknown audit command '${sub}'`);
    }
  });
}

async function rebuild(args: readonly string[], environment: Record<string, string | undefined>): Promise<number> {
  const { values } = parseArgs({ args: [...args], strict: true, options: { json: { type: 'boolean', default: false } } });
  const connection = auditConnection(environment);
  const progress = new ProgressLine('events', undefined);
  let last: auditV1.RebuildProjectionResponse | undefined;
  try {
    const stream = connection.client.stream<auditV1.RebuildProjectionResponse>('rebuildProjection', {});
    for await (const message of stream as AsyncIterable<auditV1.RebuildProjectionResponse>) {
      last = message;
      progress.setTotal(message.eventsProjected + message.eventsLeft);
      progress.update(message.eventsProjected);
    }
  } catch (error) {
    throw auditFailure(connection, error);
  } finally {
    progress.finish();
    connection.client.close();
  }
  if (!last?.done) throw new CommandError('the audit service ended the rebuild without finishing it; its log says why, and the current projection stays in use');
  if (values.json) {
    process.stdout.write(`${JSON.stringify({ generation: last.generation, eventsProjected: last.eventsProjected, sessions: last.sessions })}\n`);
  } else {
    process.stdout.write(`rebuilt the audit projection from the log: ${last.eventsProjected} events replayed, ${last.sessions} sessions; now on generation ${last.generation}\n`);
  }
  return 0;
}

/** An ISO 8601 instant from a flag, or a usage error naming the flag. */
function instantOf(flag: string, value: string): Date {
  const at = /^\d{4}-\d\d-\d\d/.test(value) ? new Date(value) : new Date(Number.NaN);
  if (Number.isNaN(at.getTime())) throw new UsageError(`${flag} '${value.slice(0, 40)}' is not an ISO 8601 time, e.g. 2026-11-01 or 2026-11-01T08:00:00Z`);
  return at;
}

async function exportSessions(args: readonly string[], environment: Record<string, string | undefined>): Promise<number> {
  const { values } = parseArgs({
    args: [...args],
    strict: true,
    options: { since: { type: 'string' }, until: { type: 'string' }, format: { type: 'string', default: 'jsonl' }, output: { type: 'string' } },
  });
  if (values.since === undefined) throw new UsageError('--since is required: the export holds the sessions started from then on');
  if (values.format !== 'jsonl') throw new UsageError(`--format '${values.format}' is not supported; the export is JSON lines (--format jsonl)`);
  const since = instantOf('--since', values.since);
  const until = values.until === undefined ? undefined : instantOf('--until', values.until);
  if (until && until <= since) throw new UsageError(`--until (${until.toISOString()}) must be after --since (${since.toISOString()})`);

  // The export is approved for a person, so it goes out under the caller's API key, never the internal token.
  const address = auditConnection(environment).address;
  const client = grpcClient<auditV1.AuditServiceClient>(SERVICE_PROTOS.audit.files[0], 'tracegate.audit.v1.AuditService', address, { metadata: apiKeyMetadata(environment) });
  const connection = { address, client };
  // Written beside the file and renamed once complete, so a refused or broken export leaves no partial file.
  const partial = values.output ? `${values.output}.partial` : undefined;
  const file = partial ? createWriteStream(partial, { flags: 'w', mode: 0o600 }) : undefined;
  const out: NodeJS.WritableStream = file ?? process.stdout;
  const progress = new ProgressLine('sessions', undefined);
  let requestId = '';
  let exported = 0;
  let done = false;
  try {
    const stream = client.stream<auditV1.ExportResponse>('export', { since: timestampOf(since), until: until ? timestampOf(until) : undefined });
    for await (const message of stream as AsyncIterable<auditV1.ExportResponse>) {
      if (!requestId) {
        requestId = message.approvalRequestId;
        const expires = message.approvalExpiresAt ? ` before ${isoOf(message.approvalExpiresAt)}` : '';
        process.stderr.write(
          `export request ${requestId}: waiting for approval by a member of '${message.reviewerGroup}'${expires} (\`tracegate approvals approve ${requestId}\`)\n`,
        );
      }
      if (message.approvalState === 'approved' && !message.session && !message.done && message.sessionsExported === 0) {
        process.stderr.write(`approved by ${message.approvedBy.join(', ') || 'a reviewer'}; exporting ${message.sessionsTotal} session${message.sessionsTotal === 1 ? '' : 's'}\n`);
        progress.setTotal(message.sessionsTotal);
      }
      if (message.session) {
        const line = auditV1.ExportedSession.toJSON({
          session: message.session.session ? sessionForJson(message.session.session) : undefined,
          statements: message.session.statements.map(statementForJson),
        });
        progress.clear();
        if (!out.write(`${JSON.stringify(line)}\n`)) await once(out, 'drain');
        exported = message.sessionsExported;
        progress.update(exported);
      }
      if (message.done) done = true;
    }
  } catch (error) {
    throw auditFailure(connection, error);
  } finally {
    progress.finish();
    client.close();
    if (partial && file) {
      file.end();
      await finished(file).catch(() => undefined);
      if (!done) await rm(partial, { force: true });
    }
  }
  if (!done) throw new CommandError('the audit service ended the export before it was complete; nothing was written to --output, run it again');
  if (partial && values.output) await rename(partial, values.output);
  process.stderr.write(`exported ${exported} session${exported === 1 ? '' : 's'}${values.output ? ` to ${values.output}` : ''} (approval ${requestId})\n`);
  return 0;
}
