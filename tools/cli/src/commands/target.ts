import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { brokerV1 } from '@tracegate/contracts';
import { brokerConnection, callBroker, CommandError, isoOf, runCommand, table, UsageError } from './broker-connection.js';
import { fingerprintOf, publicKeyArgument } from './ssh-keys.js';

export const TARGET_USAGE = `usage:
  tracegate target add <name> --type postgres --host H [--port 5432] --database D --user U
                       (--password-env VAR | --secret-file F) [--tls disable|require|verify-full] [--label key=value]...
  tracegate target add <name> --type ssh --host H [--port 22] --user U --host-key <key line or @file>
                       (--secret-file <private key file> | --password-env VAR) [--label key=value]...
      registers a target; the password is read from the environment variable VAR, or the password
      or private key from file F (never from the command line, which other users can see),
      encrypted at rest and never shown again. An ssh target's --host-key is the server's host
      public key (ssh-ed25519 AAAA…, a known_hosts line, or @/etc/ssh/ssh_host_ed25519_key.pub);
      the gateway refuses the target if it ever presents another key
  tracegate target list
  tracegate target remove <name>
  tracegate target rotate-keys
      re-encrypts every secret under the first key of TRACEGATE_BROKER_KEYS

The broker is at TRACEGATE_BROKER_ADDRESS (default 127.0.0.1:7104); the internal token comes from
TRACEGATE_INTERNAL_TOKEN or <TRACEGATE_HOME or ./.tracegate>/internal-token.
`;

const TYPES: Record<string, brokerV1.TargetType> = { postgres: brokerV1.TargetType.TARGET_TYPE_POSTGRES, ssh: brokerV1.TargetType.TARGET_TYPE_SSH };
const TLS: Record<string, brokerV1.TlsMode> = {
  disable: brokerV1.TlsMode.TLS_MODE_DISABLE,
  require: brokerV1.TlsMode.TLS_MODE_REQUIRE,
  'verify-full': brokerV1.TlsMode.TLS_MODE_VERIFY_FULL,
};
const TYPE_NAMES: Record<number, string> = Object.fromEntries(Object.entries(TYPES).map(([k, v]) => [v, k]));
const TLS_NAMES: Record<number, string> = Object.fromEntries(Object.entries(TLS).map(([k, v]) => [v, k]));

export function targetCommand(argv: readonly string[], environment: Record<string, string | undefined> = process.env): Promise<number> {
  return runCommand(TARGET_USAGE, async () => {
    const [sub, ...rest] = argv;
    switch (sub) {
      case 'add':
        return add(rest, environment);
      case 'list':
        parseArgs({ args: [...rest], options: {}, strict: true });
        return list(environment);
      case 'remove':
        return remove(rest, environment);
      case 'rotate-keys':
        parseArgs({ args: [...rest], options: {}, strict: true });
        return rotateKeys(environment);
      case undefined:
      case 'help':
      case '--help':
        process.stdout.write(TARGET_USAGE);
        return sub === undefined ? 2 : 0;
      default:
        throw new UsageError(`unknown target command '${sub}'`);
    }
  });
}

function onePositional(positionals: string[], what: string): string {
  if (positionals.length !== 1) throw new UsageError(`expected one ${what}, got ${positionals.length === 0 ? 'none' : positionals.join(' ')}`);
  return positionals[0]!;
}

async function add(args: readonly string[], environment: Record<string, string | undefined>): Promise<number> {
  const { values, positionals } = parseArgs({
    args: [...args],
    allowPositionals: true,
    strict: true,
    options: {
      type: { type: 'string', default: 'postgres' },
      host: { type: 'string' },
      port: { type: 'string' },
      database: { type: 'string' },
      user: { type: 'string' },
      'password-env': { type: 'string' },
      'secret-file': { type: 'string' },
      password: { type: 'string' },
      'host-key': { type: 'string' },
      tls: { type: 'string' },
      label: { type: 'string', multiple: true, default: [] },
    },
  });
  const name = onePositional(positionals, 'target name');
  if (values.password !== undefined) {
    throw new UsageError('--password is not accepted: the command line is visible to other users; put the password in an environment variable and pass its name with --password-env');
  }
  const type = TYPES[values.type!];
  if (type === undefined) throw new UsageError(`--type '${values.type}' is not one of ${Object.keys(TYPES).join(', ')}`);
  const ssh = type === brokerV1.TargetType.TARGET_TYPE_SSH;
  for (const [flag, value] of [['--host', values.host], ['--user', values.user]] as const) {
    if (!value) throw new UsageError(`${flag} is required`);
  }
  if (!values['password-env'] === !values['secret-file']) throw new UsageError('give the secret with one of --password-env VAR or --secret-file F');
  let tls = brokerV1.TlsMode.TLS_MODE_UNSPECIFIED;
  let hostKey = '';
  if (ssh) {
    if (values.database !== undefined) throw new UsageError('--database is for postgres targets; an ssh target has none');
    if (values.tls !== undefined) throw new UsageError("--tls is for postgres targets; an ssh target's server is checked by its --host-key");
    if (!values['host-key']) throw new UsageError("--host-key is required for an ssh target: the server's host public key line, e.g. from `ssh-keyscan -t ed25519 <host>`");
    hostKey = publicKeyArgument(values['host-key'], '--host-key');
  } else {
    if (!values.database) throw new UsageError('--database is required for a postgres target');
    if (values['host-key'] !== undefined) throw new UsageError('--host-key is for ssh targets; a postgres server is checked with --tls verify-full');
    const mode = TLS[values.tls ?? 'require'];
    if (mode === undefined) throw new UsageError(`--tls '${values.tls}' is not one of ${Object.keys(TLS).join(', ')}`);
    tls = mode;
  }
  const port = Number(values.port ?? (ssh ? '22' : '5432'));
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new UsageError(`--port '${values.port}' is not a port from 1 to 65535`);
  const labels: Record<string, string> = {};
  for (const label of values.label ?? []) {
    const eq = label.indexOf('=');
    if (eq <= 0) throw new UsageError(`--label '${label}' is not key=value`);
    labels[label.slice(0, eq)] = label.slice(eq + 1);
  }
  const secret = values['secret-file'] ? secretFromFile(values['secret-file']) : secretFromEnvironment(values['password-env']!, environment);

  const connection = brokerConnection(environment);
  const targets = connection.client<brokerV1.TargetServiceClient>('TargetService');
  try {
    const response = await callBroker(connection, () =>
      targets.addTarget({
        target: { name, type, host: values.host!, port, database: values.database ?? '', user: values.user!, tls, labels, createdAt: undefined, hostKey },
        secret,
      }),
    );
    const t = response.target;
    const where = `${t?.user ?? values.user}@${t?.host ?? values.host}:${t?.port ?? port}`;
    const what = secret.startsWith('-----BEGIN ') ? 'private key' : 'password';
    process.stdout.write(
      ssh
        ? `registered target '${name}' (ssh ${where}, host key ${fingerprintOf(t?.hostKey ?? hostKey)}); its ${what} is encrypted and will not be shown again\n`
        : `registered target '${name}' (postgres ${where}/${t?.database ?? values.database ?? ''}, tls ${TLS_NAMES[tls]}); its ${what} is encrypted and will not be shown again\n`,
    );
    return 0;
  } finally {
    targets.close();
  }
}

function secretFromEnvironment(variable: string, environment: Record<string, string | undefined>): string {
  const secret = environment[variable];
  if (!secret) {
    throw new CommandError(`the environment variable ${variable} named by --password-env is not set or empty; set it for this command, e.g. \`read -rs ${variable} && export ${variable}\``);
  }
  return secret;
}

/** A private key file is sent as it is; a password file loses the newline an editor ends it with. */
function secretFromFile(file: string): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new CommandError(`cannot read --secret-file ${file} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  }
  const secret = text.trimStart().startsWith('-----BEGIN ') ? text : text.replace(/\r?\n$/, '');
  if (!secret) throw new CommandError(`--secret-file ${file} is empty`);
  return secret;
}

async function list(environment: Record<string, string | undefined>): Promise<number> {
  const connection = brokerConnection(environment);
  const targets = connection.client<brokerV1.TargetServiceClient>('TargetService');
  try {
    const response = await callBroker(connection, () => targets.listTargets({}));
    if (response.targets.length === 0) {
      process.stdout.write('no targets registered; add one with `tracegate target add <name> …`\n');
      return 0;
    }
    const rows = response.targets.map((t) => [
      t.name,
      TYPE_NAMES[t.type] ?? String(t.type),
      t.host,
      String(t.port),
      t.database,
      t.user,
      TLS_NAMES[t.tls] ?? '',
      t.hostKey ? fingerprintOf(t.hostKey) : '',
      Object.entries(t.labels).map(([k, v]) => `${k}=${v}`).join(','),
      isoOf(t.createdAt),
    ]);
    process.stdout.write(table(['NAME', 'TYPE', 'HOST', 'PORT', 'DATABASE', 'USER', 'TLS', 'HOST KEY', 'LABELS', 'CREATED'], rows));
    return 0;
  } finally {
    targets.close();
  }
}

async function remove(args: readonly string[], environment: Record<string, string | undefined>): Promise<number> {
  const { positionals } = parseArgs({ args: [...args], allowPositionals: true, strict: true, options: {} });
  const name = onePositional(positionals, 'target name');
  const connection = brokerConnection(environment);
  const targets = connection.client<brokerV1.TargetServiceClient>('TargetService');
  try {
    await callBroker(connection, () => targets.removeTarget({ name }));
    process.stdout.write(`removed target '${name}'\n`);
    return 0;
  } finally {
    targets.close();
  }
}

async function rotateKeys(environment: Record<string, string | undefined>): Promise<number> {
  const connection = brokerConnection(environment);
  const targets = connection.client<brokerV1.TargetServiceClient>('TargetService');
  try {
    const { rewrapped, keyId } = await callBroker(connection, () => targets.rewrapSecrets({}));
    process.stdout.write(`re-encrypted ${rewrapped} secret${rewrapped === 1 ? '' : 's'}; every secret is now under key '${keyId}', and older keys can be removed from TRACEGATE_BROKER_KEYS\n`);
    return 0;
  } finally {
    targets.close();
  }
}
