import { generateKeyPairSync } from 'node:crypto';

/** SSH key material made in process, for unit tests that only look at its shape (no ssh-keygen). */

function sshString(bytes: Buffer | string): Buffer {
  const body = typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes;
  const length = Buffer.alloc(4);
  length.writeUInt32BE(body.length);
  return Buffer.concat([length, body]);
}

/** A fresh ed25519 key: its OpenSSH public key line and its private key as PKCS#8 PEM. */
export function ed25519KeyPair(comment = 'unit-test'): { publicKeyLine: string; privateKeyPem: string } {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const raw = Buffer.from(publicKey.export({ format: 'jwk' }).x!, 'base64url');
  const blob = Buffer.concat([sshString('ssh-ed25519'), sshString(raw)]);
  return { publicKeyLine: `ssh-ed25519 ${blob.toString('base64')} ${comment}`, privateKeyPem: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString() };
}

/** An `-----BEGIN OPENSSH PRIVATE KEY-----` block with the given cipher: enough for a shape check, not a usable key. */
export function openSshKeyBlock(cipher: 'none' | 'aes256-ctr'): string {
  const body = Buffer.concat([Buffer.from('openssh-key-v1\0', 'latin1'), sshString(cipher), sshString(cipher === 'none' ? 'none' : 'bcrypt'), sshString(''), Buffer.from([0, 0, 0, 1])]);
  const lines = body.toString('base64').match(/.{1,70}/g)!;
  return `-----BEGIN OPENSSH PRIVATE KEY-----\n${lines.join('\n')}\n-----END OPENSSH PRIVATE KEY-----\n`;
}
