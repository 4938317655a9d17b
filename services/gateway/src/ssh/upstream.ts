import ssh2 from 'ssh2';
import { parseSshPublicKey, type SshPublicKey } from '@tracegate/runtime/ssh-public-key';
import type { CredentialLease } from '../postgres/ports.js';

/** A login failure. `message` is safe for the client (names the target, never the credential); `detail` is for the log. */
export class TargetConnectError extends Error {
  override readonly name = 'TargetConnectError';
  constructor(
    message: string,
    readonly detail: string,
  ) {
    super(message);
  }
}

/** The registered host key, or undefined when it is not one (the broker checks it when it is registered). */
function pinnedKey(line: string): SshPublicKey | undefined {
  try {
    return parseSshPublicKey(line);
  } catch {
    return undefined;
  }
}

/** The host key algorithms that prove a key of this type (an RSA key signs with SHA-2 or SHA-1). */
function algorithmsFor(type: string): string[] {
  return type === 'ssh-rsa' ? ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'] : [type];
}

const PRIVATE_KEY = /^-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/;

/**
 * Logs in to an SSH target with the broker's credential (a private key or a password, never the
 * client's), accepting only the host key registered for the target: a target that presents any
 * other key — a re-keyed host, or someone in between — is refused before any credential is sent.
 */
export function connectToTarget(lease: CredentialLease, options: { timeoutMs: number }): Promise<ssh2.Client> {
  const { endpoint } = lease;
  const pinned = lease.hostKey ? pinnedKey(lease.hostKey) : undefined;
  if (!pinned) {
    return Promise.reject(new TargetConnectError(`target '${endpoint.name}' has no usable host key registered, so the gateway cannot tell it from an impostor; register it with tracegate target add --type ssh --host-key`, 'no pinned host key in the lease'));
  }
  const secret = endpoint.password;
  return new Promise((resolve, reject) => {
    const client = new ssh2.Client();
    let hostKeyMismatch = false;
    client.once('ready', () => {
      client.removeAllListeners('error');
      resolve(client);
    });
    client.once('error', (error: Error & { level?: string; code?: string }) => {
      client.end();
      const where = `target '${endpoint.name}' (${endpoint.host}:${endpoint.port})`;
      if (hostKeyMismatch) reject(new TargetConnectError(`${where} presented a host key other than the one registered with tracegate, so the gateway did not log in; if the host was re-keyed, register its new key`, error.message));
      else if (error.level === 'client-authentication') reject(new TargetConnectError(`the gateway could not log in to ${where} with the credential registered for it; an operator should check it with tracegate target add`, error.message));
      else if (error.level === 'client-timeout') reject(new TargetConnectError(`${where} did not complete the SSH handshake within ${options.timeoutMs} ms`, error.message));
      else if (error.code === 'ECONNREFUSED') reject(new TargetConnectError(`${where} refused the connection: is sshd running there?`, error.message));
      else reject(new TargetConnectError(`the gateway could not reach ${where}: ${error.message}`, error.message));
    });
    client.connect({
      host: endpoint.host,
      port: endpoint.port,
      username: endpoint.user,
      ...(PRIVATE_KEY.test(secret) ? { privateKey: secret } : { password: secret }),
      algorithms: { serverHostKey: algorithmsFor(pinned.algorithm) as ssh2.ServerHostKeyAlgorithm[] },
      hostVerifier: (key: Buffer) => {
        const ok = key.equals(pinned.blob);
        hostKeyMismatch = !ok;
        return ok;
      },
      readyTimeout: options.timeoutMs,
      keepaliveInterval: 15_000,
      keepaliveCountMax: 3,
    });
  });
}
