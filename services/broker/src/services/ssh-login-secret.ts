import { BrokerError } from '../errors.js';

/**
 * What the gateway logs in to an SSH target with: a password, or a private key it can use without
 * a passphrase (the gateway has nobody to ask for one). Only the shape is checked here; the target's
 * sshd is the judge of whether it works. Messages never quote the secret, not even a part of it.
 */
export type SshLoginSecretKind = 'password' | 'private-key';

const MAX_PASSWORD_BYTES = 4096;
/** An OpenSSH RSA 8192 key is about 6.5 KiB; anything much larger is not a key. */
const MAX_PRIVATE_KEY_BYTES = 16384;
const PEM_BLOCK = /^-----BEGIN ([A-Z0-9 ]+)-----\r?\n([\s\S]*?)\r?\n?-----END ([A-Z0-9 ]+)-----\s*$/;
const USABLE_LABELS = new Set(['OPENSSH PRIVATE KEY', 'RSA PRIVATE KEY', 'EC PRIVATE KEY', 'PRIVATE KEY']);
/** openssh-key-v1\0 (OpenSSH's PROTOCOL.key), then the cipher name as an SSH string. */
const OPENSSH_KEY_MAGIC = Buffer.from('openssh-key-v1\0', 'latin1');

const invalid = (problem: string) => BrokerError.invalidArgument('secret', problem);

/** Throws INVALID_ARGUMENT naming what is wrong with an SSH target's secret; returns which kind it is. */
export function checkSshLoginSecret(secret: string): SshLoginSecretKind {
  const looksLikeKey = secret.trimStart().startsWith('-----BEGIN ') || secret.includes('PRIVATE KEY-----');
  if (!looksLikeKey) {
    if (/[\r\n]/.test(secret)) {
      throw invalid('is neither a one-line password nor a private key: a private key must be the whole -----BEGIN … PRIVATE KEY----- block, a password one line');
    }
    if (Buffer.byteLength(secret, 'utf8') > MAX_PASSWORD_BYTES) throw invalid(`is longer than ${MAX_PASSWORD_BYTES} bytes`);
    return 'password';
  }
  if (Buffer.byteLength(secret, 'utf8') > MAX_PRIVATE_KEY_BYTES) throw invalid(`is a private key longer than ${MAX_PRIVATE_KEY_BYTES} bytes; use an ed25519 or ecdsa key`);
  const block = PEM_BLOCK.exec(secret.trim());
  if (!block || block[1] !== block[3]) {
    throw invalid('looks like a private key but is not one whole -----BEGIN … PRIVATE KEY----- … -----END … PRIVATE KEY----- block; pass the key file as it is (e.g. --secret-file ~/.ssh/id_ed25519)');
  }
  const label = block[1]!;
  if (label === 'ENCRYPTED PRIVATE KEY' || /^Proc-Type: *4,ENCRYPTED/m.test(block[2]!)) {
    throw invalid('is a passphrase-protected private key; the gateway cannot type a passphrase: give it a key without one (`ssh-keygen -p -N "" -f <copy of the key>`)');
  }
  if (!USABLE_LABELS.has(label)) {
    throw invalid(`is a '${label}' block, not a private key the gateway can use: give an OPENSSH, RSA, EC or PKCS#8 PRIVATE KEY block`);
  }
  const body = block[2]!.replace(/\s+/g, '');
  const der = /^[A-Za-z0-9+/]+={0,2}$/.test(body) ? Buffer.from(body, 'base64') : undefined;
  if (!der || der.length === 0) throw invalid(`is a ${label} block whose body is not base64`);
  if (label === 'OPENSSH PRIVATE KEY') checkOpenSshKey(der);
  return 'private-key';
}

function checkOpenSshKey(der: Buffer): void {
  if (!der.subarray(0, OPENSSH_KEY_MAGIC.length).equals(OPENSSH_KEY_MAGIC)) throw invalid('is an OPENSSH PRIVATE KEY block that does not hold an OpenSSH key');
  const at = OPENSSH_KEY_MAGIC.length;
  const cipherLength = der.length >= at + 4 ? der.readUInt32BE(at) : -1;
  if (cipherLength < 0 || at + 4 + cipherLength > der.length) throw invalid('is an OPENSSH PRIVATE KEY block that is cut short');
  const cipher = der.subarray(at + 4, at + 4 + cipherLength).toString('latin1');
  if (cipher !== 'none') {
    throw invalid('is a passphrase-protected private key; the gateway cannot type a passphrase: give it a key without one (`ssh-keygen -p -N "" -f <copy of the key>`)');
  }
}
