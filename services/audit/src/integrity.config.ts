import { createHash, createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { ConfigProblem, env, type ConfigField } from '@tracegate/runtime';

/** The Ed25519 key that signs checkpoints, and the public half verification trusts. */
export interface CheckpointKey {
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
  /** The first 16 hex digits of the SHA-256 of the public key's raw bytes: names the key in events without revealing anything. */
  readonly keyId: string;
}

// PKCS#8 DER of an Ed25519 private key is this prefix and the 32-byte seed.
const ED25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

/** An Ed25519 seed (32 bytes, base64) as the checkpoint key. */
export function checkpointKeyOf(seedBase64: string): CheckpointKey {
  const seed = Buffer.from(seedBase64, 'base64');
  if (seed.length !== 32 || !/^[A-Za-z0-9+/_-]+=*$/.test(seedBase64)) throw new ConfigProblem('is not an Ed25519 seed: 32 random bytes in base64 (`openssl rand -base64 32`)');
  const privateKey = createPrivateKey({ key: Buffer.concat([ED25519_PKCS8_PREFIX, seed]), format: 'der', type: 'pkcs8' });
  const publicKey = createPublicKey(privateKey);
  const raw = publicKey.export({ format: 'jwk' }).x ?? '';
  const keyId = createHash('sha256').update(raw).digest('hex').slice(0, 16);
  return { privateKey, publicKey, keyId };
}

function checkpointKeyField(name: string): ConfigField<CheckpointKey | undefined> {
  return { env: name, parse: (raw) => (raw === undefined ? undefined : checkpointKeyOf(raw)) };
}

/**
 * Integrity settings. Without a checkpoint key no checkpoints are signed (verification still checks
 * the chains, the log against the projection, and the rows); the all-in-one makes one on first start.
 */
export const INTEGRITY_CONFIG_SCHEMA = {
  checkpointKey: checkpointKeyField('TRACEGATE_AUDIT_CHECKPOINT_KEY'),
  /** A checkpoint is signed once this many session events were projected since the last one… */
  checkpointEveryEvents: env.int('TRACEGATE_AUDIT_CHECKPOINT_EVERY_EVENTS', { fallback: 10_000, min: 1 }),
  /** …or this long after the first event not yet covered. */
  checkpointIntervalMs: env.int('TRACEGATE_AUDIT_CHECKPOINT_INTERVAL_MS', { fallback: 60_000, min: 100 }),
  /** How often the periodic verifier checks a round of sessions; 0 turns it off. */
  verifyIntervalMs: env.int('TRACEGATE_AUDIT_VERIFY_INTERVAL_MS', { fallback: 300_000, min: 0 }),
  /** Sessions the periodic verifier checks per round (it walks all of them, round after round). */
  verifySessionsPerRound: env.int('TRACEGATE_AUDIT_VERIFY_SESSIONS_PER_ROUND', { fallback: 200, min: 1, max: 100_000 }),
} satisfies Record<string, ConfigField<unknown>>;
