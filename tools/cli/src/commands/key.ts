import { parseArgs } from 'node:util';
import { brokerV1 } from '@tracegate/contracts';
import { brokerConnection, callBroker, isoOf, runCommand, table, UsageError } from './broker-connection.js';
import { fingerprintOf, parsedPublicKey, publicKeyArgument } from './ssh-keys.js';

export const KEY_USAGE = `usage:
  tracegate key create --name N --kind agent|human|service [--group G]...
      prints a new API key once; clients log in with postgresql://N:<key>@<gateway>:15432/<target>
  tracegate key list
  tracegate key revoke <name>
  tracegate key add-ssh <name> <public key line, or its file>
      lets the key's identity log in to the gateway's SSH side with its own key pair instead of
      the API key: ssh -p 15022 '<name>:<target>'@<gateway> … (e.g. ~/.ssh/id_ed25519.pub)
  tracegate key remove-ssh <name> <SHA256:… fingerprint, public key line, or its file>

The broker is at TRACEGATE_BROKER_ADDRESS (default 127.0.0.1:7104); the internal token comes from
TRACEGATE_INTERNAL_TOKEN or <TRACEGATE_HOME or ./.tracegate>/internal-token.
`;

const KINDS: Record<string, brokerV1.IdentityKind> = {
  agent: brokerV1.IdentityKind.IDENTITY_KIND_AGENT,
  human: brokerV1.IdentityKind.IDENTITY_KIND_HUMAN,
  service: brokerV1.IdentityKind.IDENTITY_KIND_SERVICE,
};
const KIND_NAMES: Record<number, string> = Object.fromEntries(Object.entries(KINDS).map(([k, v]) => [v, k]));

export function keyCommand(argv: readonly string[], environment: Record<string, string | undefined> = process.env): Promise<number> {
  return runCommand(KEY_USAGE, async () => {
    const [sub, ...rest] = argv;
    switch (sub) {
      case 'create':
        return create(rest, environment);
      case 'list':
        parseArgs({ args: [...rest], options: {}, strict: true });
        return list(environment);
      case 'revoke':
        return revoke(rest, environment);
      case 'add-ssh':
        return addSsh(rest, environment);
      case 'remove-ssh':
        return removeSsh(rest, environment);
      case undefined:
      case 'help':
      case '--help':
        process.stdout.write(KEY_USAGE);
        return sub === undefined ? 2 : 0;
      default:
        throw new UsageError(`unknown key command '${sub}'`);
    }
  });
}

async function create(args: readonly string[], environment: Record<string, string | undefined>): Promise<number> {
  const { values } = parseArgs({
    args: [...args],
    strict: true,
    options: {
      name: { type: 'string' },
      kind: { type: 'string' },
      group: { type: 'string', multiple: true, default: [] },
    },
  });
  if (!values.name) throw new UsageError('--name is required');
  const kind = KINDS[values.kind ?? ''];
  if (kind === undefined) throw new UsageError(`--kind ${values.kind ? `'${values.kind}' ` : ''}must be one of ${Object.keys(KINDS).join(', ')}`);
  const connection = brokerConnection(environment);
  const identity = connection.client<brokerV1.IdentityServiceClient>('IdentityService');
  try {
    const response = await callBroker(connection, () => identity.createKey({ name: values.name!, kind, groups: values.group ?? [] }));
    const groups = response.key?.groups.length ? `; groups: ${response.key.groups.join(', ')}` : '';
    process.stdout.write(
      `created API key '${values.name}' (${values.kind}${groups}), id ${response.key?.id ?? ''}:\n\n` +
        `${response.secret}\n\n` +
        'This key will not be shown again: store it now. Clients log in with it as the password, ' +
        `e.g. postgresql://${values.name}:<key>@<gateway host>:15432/<target>\n`,
    );
    return 0;
  } finally {
    identity.close();
  }
}

async function list(environment: Record<string, string | undefined>): Promise<number> {
  const connection = brokerConnection(environment);
  const identity = connection.client<brokerV1.IdentityServiceClient>('IdentityService');
  try {
    const { keys } = await callBroker(connection, () => identity.listKeys({}));
    if (keys.length === 0) {
      process.stdout.write('no API keys; create one with `tracegate key create --name N --kind agent`\n');
      return 0;
    }
    const rows = keys.map((k) => [
      k.name,
      KIND_NAMES[k.kind] ?? String(k.kind),
      k.groups.join(','),
      isoOf(k.createdAt),
      k.revokedAt ? `revoked ${isoOf(k.revokedAt)}` : 'active',
      k.id,
      k.sshKeys.map((ssh) => fingerprintOf(ssh.publicKey)).join(', '),
    ]);
    process.stdout.write(table(['NAME', 'KIND', 'GROUPS', 'CREATED', 'STATE', 'ID', 'SSH KEYS'], rows));
    return 0;
  } finally {
    identity.close();
  }
}

async function revoke(args: readonly string[], environment: Record<string, string | undefined>): Promise<number> {
  const { positionals } = parseArgs({ args: [...args], allowPositionals: true, strict: true, options: {} });
  if (positionals.length !== 1) throw new UsageError('expected one key name');
  const name = positionals[0]!;
  const connection = brokerConnection(environment);
  const identity = connection.client<brokerV1.IdentityServiceClient>('IdentityService');
  try {
    await callBroker(connection, () => identity.revokeKey({ name }));
    process.stdout.write(`revoked API key '${name}'; it no longer authenticates\n`);
    return 0;
  } finally {
    identity.close();
  }
}

function twoPositionals(args: readonly string[], second: string): [string, string] {
  const { positionals } = parseArgs({ args: [...args], allowPositionals: true, strict: true, options: {} });
  if (positionals.length !== 2) throw new UsageError(`expected a key name and ${second}`);
  return [positionals[0]!, positionals[1]!];
}

async function addSsh(args: readonly string[], environment: Record<string, string | undefined>): Promise<number> {
  const [name, given] = twoPositionals(args, 'a public key line or @file');
  const publicKey = publicKeyArgument(given, 'the public key');
  const connection = brokerConnection(environment);
  const identity = connection.client<brokerV1.IdentityServiceClient>('IdentityService');
  try {
    const { sshKey } = await callBroker(connection, () => identity.addSshKey({ name, publicKey }));
    process.stdout.write(
      `registered SSH key ${fingerprintOf(sshKey?.publicKey ?? publicKey)} for '${name}'; it logs in with ssh -p <gateway SSH port> '${name}:<target>'@<gateway host>\n`,
    );
    return 0;
  } finally {
    identity.close();
  }
}

async function removeSsh(args: readonly string[], environment: Record<string, string | undefined>): Promise<number> {
  const [name, given] = twoPositionals(args, 'the SSH key: its SHA256:… fingerprint, its public key line or @file');
  const fingerprint = given.startsWith('SHA256:') ? given : parsedPublicKey(publicKeyArgument(given, 'the public key'), 'the public key').fingerprint;
  const connection = brokerConnection(environment);
  const identity = connection.client<brokerV1.IdentityServiceClient>('IdentityService');
  try {
    await callBroker(connection, () => identity.removeSshKey({ name, fingerprint }));
    process.stdout.write(`removed SSH key ${fingerprint} from '${name}'; it no longer logs in\n`);
    return 0;
  } finally {
    identity.close();
  }
}
