import { parseArgs } from 'node:util';
import { auditV1, timestampOf } from '@tracegate/contracts';
import { isoOf, runCommand, table, UsageError } from './broker-connection.js';
import { callTraces, traceConnection } from './trace-connection.js';
import { grantForJson } from './traces.js';

export const GRANTS_USAGE = `usage:
  tracegate grants create --reader NAME (--agent NAME | --target NAME) --expires-in 1h
                          [--from ISO-TIME] [--until ISO-TIME] [--reason TEXT] [--json]
      lets identity NAME read the traces one agent submitted, or those attached on one target,
      made between --from and --until, until the grant expires (30s, 15m, 8h, 7d; at most 30d)
  tracegate grants list [--reader NAME] [--all] [--json]
      live grants, newest first; --all adds expired and revoked ones
  tracegate grants revoke <id>
      ends a grant now

Reads are recorded on tracegate.audit.v1, naming the reader, what was read and the grant. These
commands use the internal token (TRACEGATE_INTERNAL_TOKEN or <TRACEGATE_HOME>/internal-token); the
audit service is at TRACEGATE_AUDIT_ADDRESS (default 127.0.0.1:7106).
`;

export function grantsCommand(argv: readonly string[], environment: Record<string, string | undefined> = process.env): Promise<number> {
  return runCommand(GRANTS_USAGE, async () => {
    const [sub, ...rest] = argv;
    switch (sub) {
      case 'create':
        return create(rest, environment);
      case 'list':
        return list(rest, environment);
      case 'revoke':
        return revoke(rest, environment);
      case undefined:
      case 'help':
      case '--help':
        process.stdout.write(GRANTS_USAGE);
        return sub === undefined ? 2 : 0;
      default:
        throw new UsageError(`unknown grants command '${sub}'`);
    }
  });
}

const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400 };

/** `90s`, `15m`, `8h`, `7d` -> seconds. */
export function durationSeconds(text: string, option: string): number {
  const match = /^(\d+)([smhd])$/.exec(text.trim());
  if (!match) throw new UsageError(`${option} '${text}' is not a duration such as 30s, 15m, 8h or 7d`);
  return Number(match[1]) * UNIT_SECONDS[match[2]!]!;
}

function instant(text: string | undefined, option: string) {
  if (text === undefined) return undefined;
  // A date alone or a time with a zone; a zone-less time would depend on this machine's clock zone.
  if (!/^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2}))?$/.test(text) || Number.isNaN(Date.parse(text))) {
    throw new UsageError(`${option} '${text}' is not an ISO 8601 time with a zone, such as 2026-11-22T09:00:00Z or 2026-11-22`);
  }
  return timestampOf(new Date(text));
}

async function create(args: readonly string[], environment: Record<string, string | undefined>): Promise<number> {
  const { values } = parseArgs({
    args: [...args],
    strict: true,
    options: {
      reader: { type: 'string' },
      agent: { type: 'string' },
      target: { type: 'string' },
      from: { type: 'string' },
      until: { type: 'string' },
      'expires-in': { type: 'string' },
      reason: { type: 'string', default: '' },
      json: { type: 'boolean', default: false },
    },
  });
  if (!values.reader) throw new UsageError('--reader is required: the identity name allowed to read');
  if (!values.agent === !values.target) throw new UsageError('give exactly one of --agent (traces that identity submitted) or --target (traces attached on that target)');
  if (!values['expires-in']) throw new UsageError('--expires-in is required: a reader grant is always time-bound (e.g. --expires-in 1h)');
  const request: auditV1.CreateReaderGrantRequest = {
    reader: values.reader,
    agent: values.agent ?? '',
    target: values.target ?? '',
    from: instant(values.from, '--from'),
    until: instant(values.until, '--until'),
    expiresInSeconds: durationSeconds(values['expires-in'], '--expires-in'),
    reason: values.reason!,
  };
  const connection = traceConnection<auditV1.ReaderGrantServiceClient>('ReaderGrantService', 'internal-token', environment);
  const { grant } = await callTraces(connection, (grants) => grants.createReaderGrant(request));
  if (!grant) throw new Error('the audit service returned no grant');
  if (values.json) process.stdout.write(`${JSON.stringify(auditV1.ReaderGrant.toJSON(grantForJson(grant)), null, 2)}\n`);
  else process.stdout.write(`${grant.id}\n${grant.reader} may read ${scopeOf(grant)}${windowOf(grant)} until ${isoOf(grant.expiresAt ?? undefined)}\n`);
  return 0;
}

async function list(args: readonly string[], environment: Record<string, string | undefined>): Promise<number> {
  const { values } = parseArgs({ args: [...args], strict: true, options: { reader: { type: 'string', default: '' }, all: { type: 'boolean', default: false }, json: { type: 'boolean', default: false } } });
  const connection = traceConnection<auditV1.ReaderGrantServiceClient>('ReaderGrantService', 'internal-token', environment);
  const { grants } = await callTraces(connection, (client) => client.listReaderGrants({ reader: values.reader!, includeInactive: values.all! }));
  if (values.json) {
    process.stdout.write(`${JSON.stringify(grants.map((g) => auditV1.ReaderGrant.toJSON(grantForJson(g))), null, 2)}\n`);
    return 0;
  }
  if (grants.length === 0) {
    process.stdout.write(`no ${values.all ? '' : 'live '}reader grants${values.reader ? ` for ${values.reader}` : ''}; \`tracegate grants create\` makes one\n`);
    return 0;
  }
  const now = Date.now();
  const state = (g: auditV1.ReaderGrant) => (g.revokedAt ? 'revoked' : g.expiresAt && g.expiresAt.seconds * 1000 <= now ? 'expired' : 'live');
  const rows = grants.map((g) => [g.id, g.reader, scopeOf(g), windowOf(g).trim() || 'any time', isoOf(g.expiresAt ?? undefined), state(g), g.reason]);
  process.stdout.write(table(['ID', 'READER', 'SCOPE', 'WINDOW', 'EXPIRES', 'STATE', 'REASON'], rows));
  return 0;
}

async function revoke(args: readonly string[], environment: Record<string, string | undefined>): Promise<number> {
  const { positionals } = parseArgs({ args: [...args], allowPositionals: true, strict: true, options: {} });
  if (positionals.length !== 1) throw new UsageError(`expected one grant id, got ${positionals.length === 0 ? 'none' : positionals.join(' ')}`);
  const connection = traceConnection<auditV1.ReaderGrantServiceClient>('ReaderGrantService', 'internal-token', environment);
  const { grant } = await callTraces(connection, (grants) => grants.revokeReaderGrant({ id: positionals[0]! }));
  process.stdout.write(`revoked ${grant?.id ?? positionals[0]} at ${isoOf(grant?.revokedAt ?? undefined)}\n`);
  return 0;
}

function scopeOf(grant: auditV1.ReaderGrant): string {
  return grant.agent ? `agent ${grant.agent}` : `target ${grant.target}`;
}

function windowOf(grant: auditV1.ReaderGrant): string {
  const from = grant.from ? ` from ${isoOf(grant.from)}` : '';
  const until = grant.until ? ` to ${isoOf(grant.until)}` : '';
  return from || until ? ` made${from}${until}` : '';
}
