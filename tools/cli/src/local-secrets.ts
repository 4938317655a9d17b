import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ensureSelfSignedCertificate } from '@tracegate/runtime';

/**
 * The secrets the all-in-one makes for itself on first start, kept in the data folder (mode 0600)
 * so a restart finds them: the token services present to each other, the broker's
 * key-encryption keyring, the gateway's self-signed TLS certificate and its SSH host key. Anything already set in
 * the environment wins, so an operator can bring their own.
 */
export async function localSecrets(folder: string, environment: Record<string, string | undefined>): Promise<Record<string, string>> {
  const secrets: Record<string, string> = {};
  secrets.TRACEGATE_INTERNAL_TOKEN = environment.TRACEGATE_INTERNAL_TOKEN ?? readOrCreate(path.join(folder, 'internal-token'), () => randomBytes(32).toString('base64url'));
  secrets.TRACEGATE_BROKER_KEYS =
    environment.TRACEGATE_BROKER_KEYS ?? readOrCreate(path.join(folder, 'broker-keys'), () => `k${Date.now().toString(36)}:${randomBytes(32).toString('base64')}`);
  // The key of the masking 'hash' strategy: the gateway and the masking service must share it, so
  // the same value always masks to the same token (joins and counts still work on masked data).
  secrets.TRACEGATE_MASKING_HASH_KEY =
    environment.TRACEGATE_MASKING_HASH_KEY ?? readOrCreate(path.join(folder, 'masking-hash-key'), () => randomBytes(32).toString('base64'));
  // The Ed25519 seed the audit service signs its integrity checkpoints with.
  secrets.TRACEGATE_AUDIT_CHECKPOINT_KEY =
    environment.TRACEGATE_AUDIT_CHECKPOINT_KEY ?? readOrCreate(path.join(folder, 'audit-checkpoint-key'), () => randomBytes(32).toString('base64'));
  if (!environment.TRACEGATE_GATEWAY_TLS_CERT_FILE && !environment.TRACEGATE_GATEWAY_TLS_KEY_FILE) {
    const { certFile, keyFile } = await ensureSelfSignedCertificate(folder);
    secrets.TRACEGATE_GATEWAY_TLS_CERT_FILE = certFile;
    secrets.TRACEGATE_GATEWAY_TLS_KEY_FILE = keyFile;
  }
  // The gateway's SSH host key: clients pin it in known_hosts, so it must survive restarts. ECDSA
  // P-256 because Node writes it in a PEM form ssh2 reads (its Ed25519 PKCS#8 form ssh2 does not).
  if (!environment.TRACEGATE_GATEWAY_SSH_HOST_KEY_FILE) {
    const file = path.join(folder, 'gateway-ssh-host-key.pem');
    readOrCreate(file, () => generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'sec1', format: 'pem' }).toString().trim());
    secrets.TRACEGATE_GATEWAY_SSH_HOST_KEY_FILE = file;
  }
  return secrets;
}

function readOrCreate(file: string, make: () => string): string {
  if (!existsSync(file)) writeFileSync(file, `${make()}\n`, { mode: 0o600, flag: 'wx' });
  return readFileSync(file, 'utf8').trim();
}
