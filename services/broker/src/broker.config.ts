import { ConfigProblem, env, type ConfigField, type ConfigOf } from '@tracegate/runtime';

/** A key-encryption key: 32 bytes for AES-256-GCM, named so each ciphertext can say which key sealed it. */
export interface KeyEncryptionKey {
  readonly id: string;
  readonly key: Buffer;
}

/** The first key encrypts; every key decrypts, so keys can be rotated without downtime. */
export type Keyring = readonly [KeyEncryptionKey, ...KeyEncryptionKey[]];

const KEY_ID = /^[A-Za-z0-9._-]{1,64}$/;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

/** Parses `id1:<base64 32 bytes>,id2:<…>`. Problems name the entry by position and id, never its key material. */
export function parseKeyring(raw: string): Keyring {
  const problems: string[] = [];
  const keys: KeyEncryptionKey[] = [];
  const seen = new Set<string>();
  const entries = raw.split(',').map((e) => e.trim());
  entries.forEach((entry, index) => {
    const where = `entry ${index + 1}`;
    const colon = entry.indexOf(':');
    if (colon <= 0) {
      problems.push(`${where} is not of the form <key id>:<base64 of 32 random bytes>`);
      return;
    }
    const id = entry.slice(0, colon);
    const material = entry.slice(colon + 1);
    if (!KEY_ID.test(id)) {
      problems.push(`${where} has key id '${id.slice(0, 64)}', which is not 1 to 64 of A-Z a-z 0-9 . _ -`);
      return;
    }
    const key = Buffer.from(material, 'base64');
    if (!BASE64.test(material) || key.length !== 32) {
      problems.push(`${where} (key id '${id}') is not the base64 of exactly 32 bytes; generate one with \`openssl rand -base64 32\``);
      return;
    }
    if (seen.has(id)) {
      problems.push(`${where} repeats key id '${id}'; each key needs its own id`);
      return;
    }
    seen.add(id);
    keys.push({ id, key });
  });
  const [first, ...rest] = keys;
  if (problems.length > 0 || !first) throw new ConfigProblem(problems.join('; ') || 'has no keys');
  return [first, ...rest];
}

function keyringField(name: string): ConfigField<Keyring> {
  return {
    env: name,
    parse(raw) {
      if (raw === undefined) {
        throw new ConfigProblem('is required: the keys that encrypt target secrets, as <key id>:<base64 of 32 bytes>[,<older key>…]; generate one with `openssl rand -base64 32`');
      }
      return parseKeyring(raw);
    },
  };
}

export const INTERNAL_TOKEN_MIN_LENGTH = 32;

function internalTokenField(name: string): ConfigField<string> {
  return {
    env: name,
    parse(raw) {
      if (raw === undefined) {
        throw new ConfigProblem('is required: the shared secret service-to-service callers and the CLI present; generate one with `openssl rand -base64 32`');
      }
      if (raw.length < INTERNAL_TOKEN_MIN_LENGTH) {
        throw new ConfigProblem(`is ${raw.length} characters long; use at least ${INTERNAL_TOKEN_MIN_LENGTH} (\`openssl rand -base64 32\`)`);
      }
      return raw;
    },
  };
}

export const BROKER_CONFIG_SCHEMA = {
  keyring: keyringField('TRACEGATE_BROKER_KEYS'),
  internalToken: internalTokenField('TRACEGATE_INTERNAL_TOKEN'),
  credentialLeaseSeconds: env.int('TRACEGATE_CREDENTIAL_LEASE_SECONDS', { fallback: 900, min: 1, max: 86_400 }),
};

export type BrokerConfig = ConfigOf<typeof BROKER_CONFIG_SCHEMA>;

export const BROKER_CONFIG = Symbol('BROKER_CONFIG');
