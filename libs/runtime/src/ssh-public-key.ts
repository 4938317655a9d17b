import { createHash } from 'node:crypto';

/**
 * OpenSSH public keys as written in `*.pub`, `authorized_keys` and `known_hosts` files:
 * `<algorithm> <base64 blob> [comment]`. The blob is the RFC 4253 §6.6 public key encoding, which
 * starts with its own algorithm name; the broker pins target host keys and registers identities'
 * keys in this form, the gateway compares what ssh2 hands it against the blob, and the CLI shows
 * fingerprints as `ssh-keygen -l` does. One parser for all three.
 */

/** The key types the gateway's SSH library (ssh2) can verify; security keys (sk-*) and DSA are not among them. */
export const SSH_PUBLIC_KEY_ALGORITHMS = ['ssh-ed25519', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521', 'ssh-rsa'] as const;
export type SshPublicKeyAlgorithm = (typeof SSH_PUBLIC_KEY_ALGORITHMS)[number];

export interface SshPublicKey {
  readonly algorithm: SshPublicKeyAlgorithm;
  /** The decoded RFC 4253 blob: what an SSH server or client sends as its public key. */
  readonly blob: Buffer;
  /** `<algorithm> <base64 blob>`, without the comment: the form to store and compare. */
  readonly line: string;
  /** `SHA256:<unpadded base64>`, exactly as `ssh-keygen -l` prints it. */
  readonly fingerprint: string;
  readonly comment: string;
}

/** Why a line is not a usable OpenSSH public key; the message is a phrase to follow "is not an OpenSSH public key: ". */
export class SshPublicKeyError extends Error {
  override readonly name = 'SshPublicKeyError';
}

const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;
const ED25519_KEY_BYTES = 32;
const ECDSA_CURVES: Record<string, string> = { 'ecdsa-sha2-nistp256': 'nistp256', 'ecdsa-sha2-nistp384': 'nistp384', 'ecdsa-sha2-nistp521': 'nistp521' };
const MIN_RSA_BITS = 2048;

export function isSshPublicKeyAlgorithm(word: string): word is SshPublicKeyAlgorithm {
  return (SSH_PUBLIC_KEY_ALGORITHMS as readonly string[]).includes(word);
}

/** Parses one OpenSSH public key line; throws SshPublicKeyError saying what is wrong with it. */
export function parseSshPublicKey(text: string): SshPublicKey {
  const trimmed = text.trim();
  if (!trimmed) throw new SshPublicKeyError('the line is empty');
  if (/[\r\n]/.test(trimmed)) throw new SshPublicKeyError('it spans several lines; give exactly one key line');
  const [algorithm = '', encoded = '', ...commentWords] = trimmed.split(/[ \t]+/);
  if (!isSshPublicKeyAlgorithm(algorithm)) {
    throw new SshPublicKeyError(
      `'${algorithm.slice(0, 40)}' is not a supported key type; the line must start with one of ${SSH_PUBLIC_KEY_ALGORITHMS.join(', ')} (an authorized_keys line's options, or a known_hosts line's host names, do not belong in it)`,
    );
  }
  if (!encoded) throw new SshPublicKeyError(`the ${algorithm} line has no base64 key after the key type`);
  const blob = BASE64.test(encoded) ? Buffer.from(encoded, 'base64') : undefined;
  // Node's decoder skips bad characters silently; re-encoding catches a truncated or altered blob.
  if (!blob || blob.toString('base64') !== encoded) throw new SshPublicKeyError(`the key after '${algorithm}' is not valid base64`);
  checkBlob(algorithm, blob);
  return {
    algorithm,
    blob,
    line: `${algorithm} ${encoded}`,
    fingerprint: sshFingerprint(blob),
    comment: commentWords.join(' '),
  };
}

/** `SHA256:<unpadded base64 of SHA-256(blob)>`, as `ssh-keygen -l` and OpenSSH's log lines print a key. */
export function sshFingerprint(blob: Buffer): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

/** The blob's fields per RFC 4253 §6.6, RFC 5656 §3.1 and RFC 8709 §4, with nothing left over. */
function checkBlob(algorithm: SshPublicKeyAlgorithm, blob: Buffer): void {
  const reader = new BlobReader(blob);
  const embedded = reader.string().toString('latin1');
  if (embedded !== algorithm) {
    throw new SshPublicKeyError(`the line says ${algorithm} but the key itself is ${/^[\x21-\x7e]{1,64}$/.test(embedded) ? embedded : 'of no known type'}`);
  }
  switch (algorithm) {
    case 'ssh-ed25519': {
      if (reader.string().length !== ED25519_KEY_BYTES) throw new SshPublicKeyError(`the ssh-ed25519 key is not ${ED25519_KEY_BYTES} bytes`);
      break;
    }
    case 'ecdsa-sha2-nistp256':
    case 'ecdsa-sha2-nistp384':
    case 'ecdsa-sha2-nistp521': {
      const curve = reader.string().toString('latin1');
      if (curve !== ECDSA_CURVES[algorithm]) throw new SshPublicKeyError(`the ${algorithm} key names curve '${curve.slice(0, 20)}'`);
      const point = reader.string();
      // Uncompressed SEC1 point: 0x04, then x and y.
      if (point[0] !== 0x04) throw new SshPublicKeyError(`the ${algorithm} key's point is not an uncompressed curve point`);
      break;
    }
    case 'ssh-rsa': {
      reader.string(); // e
      const modulus = reader.string();
      const bits = (modulus.length - (modulus[0] === 0 ? 1 : 0)) * 8;
      if (bits < MIN_RSA_BITS) throw new SshPublicKeyError(`the ssh-rsa key has a ${bits}-bit modulus; OpenSSH refuses RSA keys under ${MIN_RSA_BITS} bits`);
      break;
    }
  }
  if (!reader.atEnd()) throw new SshPublicKeyError(`the ${algorithm} key has bytes after its last field`);
}

class BlobReader {
  private offset = 0;
  constructor(private readonly blob: Buffer) {}

  /** An SSH `string` (RFC 4251 §5): uint32 length, then that many bytes. */
  string(): Buffer {
    if (this.offset + 4 > this.blob.length) throw new SshPublicKeyError('the key is cut short');
    const length = this.blob.readUInt32BE(this.offset);
    const start = this.offset + 4;
    if (start + length > this.blob.length) throw new SshPublicKeyError('the key is cut short');
    this.offset = start + length;
    return this.blob.subarray(start, this.offset);
  }

  atEnd(): boolean {
    return this.offset === this.blob.length;
  }
}
