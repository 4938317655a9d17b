import { parseArgs } from 'node:util';
import type { auditV1 } from '@tracegate/contracts';
import { ProgressLine } from '../progress.js';
import { CommandError, runCommand, UsageError } from './broker-connection.js';
import { auditConnection, auditFailure } from './sessions.js';

export const AUDIT_USAGE = `usage:
  tracegate audit rebuild [--json]
      replays tracegate.sessions.v1 from the beginning into a fresh projection while the current
      one keeps answering, then switches reads over to it; shows progress on a terminal

The audit service is at TRACEGATE_AUDIT_ADDRESS (default 127.0.0.1:7106); the internal token comes
from TRACEGATE_INTERNAL_TOKEN or <TRACEGATE_HOME or ./.tracegate>/internal-token.
`;

export function auditCommand(argv: readonly string[], environment: Record<string, string | undefined> = process.env): Promise<number> {
  return runCommand(AUDIT_USAGE, async () => {
    const [sub, ...rest] = argv;
    switch (sub) {
      case 'rebuild':
        return rebuild(rest, environment);
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
