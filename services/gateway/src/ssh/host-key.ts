import ssh2 from 'ssh2';
import { sshFingerprint } from '@tracegate/runtime/ssh-public-key';

/** Why a host private key cannot serve the SSH listener, or undefined when it can. */
export function hostKeyProblem(key: Buffer | string): string | undefined {
  const parsed = ssh2.utils.parseKey(key);
  if (parsed instanceof Error) return `is not a private key ssh2 can read (${parsed.message}): use an OpenSSH key (ssh-keygen -t ed25519) or a PEM RSA/ECDSA key`;
  const one = Array.isArray(parsed) ? parsed[0] : parsed;
  if (!one || !one.isPrivateKey()) return 'holds a public key; the listener needs the private key';
  return undefined;
}

/** The host key's fingerprint as `ssh-keygen -l` and the client's first-connect prompt print it. */
export function hostKeyFingerprint(key: Buffer | string): string {
  const parsed = ssh2.utils.parseKey(key);
  const one = Array.isArray(parsed) ? parsed[0] : parsed;
  if (!one || one instanceof Error) return '';
  return sshFingerprint(one.getPublicSSH());
}
