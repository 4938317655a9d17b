import { existsSync, readFileSync } from 'node:fs';
import { isSshPublicKeyAlgorithm, parseSshPublicKey, SshPublicKeyError, type SshPublicKey } from '@tracegate/runtime/ssh-public-key';
import { UsageError } from './broker-connection.js';

/** How `ssh-keygen -l` names each key type at the end of its line. */
const KEY_TYPE_NAMES: Record<string, string> = {
  'ssh-ed25519': 'ED25519',
  'ecdsa-sha2-nistp256': 'ECDSA',
  'ecdsa-sha2-nistp384': 'ECDSA',
  'ecdsa-sha2-nistp521': 'ECDSA',
  'ssh-rsa': 'RSA',
};

/**
 * A public key given on the command line: the line itself, or a file as `@<file>` or its plain path (a `.pub` file, a
 * known_hosts file, `ssh-keyscan` output). A known_hosts line's leading host names
 * (`[db1]:2222,10.0.0.5` or a hashed `|1|…`) are dropped, so the line can be pasted as it is.
 * The broker checks the key itself; this only finds the one line the user meant.
 */
export function publicKeyArgument(value: string, flag: string): string {
  let text = value;
  // A key line always has a space in it; a lone word that names a file is the file (`~/.ssh/id_ed25519.pub`).
  const bareFile = !/\s/.test(value.trim()) && existsSync(value);
  if (value.startsWith('@') || bareFile) {
    const file = bareFile ? value : value.slice(1);
    try {
      text = readFileSync(file, 'utf8');
    } catch (error) {
      throw new UsageError(`${flag} ${value}: cannot read the file (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
    }
  }
  const lines = text
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line && !line.startsWith('#'));
  if (lines.length === 0) throw new UsageError(`${flag} is empty: give a public key line (ssh-ed25519 AAAA…) or @<file> holding one`);
  if (lines.length > 1) {
    throw new UsageError(
      `${flag} holds ${lines.length} key lines; give exactly one, e.g. the ed25519 one (\`ssh-keyscan -t ed25519 <host>\` prints only that)`,
    );
  }
  const line = lines[0]!;
  if (line.startsWith('@')) throw new UsageError(`${flag}: a known_hosts ${line.split(/\s/)[0]} line does not pin a host key; give the host's own key line`);
  const words = line.split(/[ \t]+/);
  return !isSshPublicKeyAlgorithm(words[0] ?? '') && isSshPublicKeyAlgorithm(words[1] ?? '') ? words.slice(1).join(' ') : line;
}

/** The key a command-line argument holds, or a usage error saying what is wrong with it. */
export function parsedPublicKey(line: string, what: string): SshPublicKey {
  try {
    return parseSshPublicKey(line);
  } catch (error) {
    if (error instanceof SshPublicKeyError) throw new UsageError(`${what} is not an OpenSSH public key: ${error.message}`);
    throw error;
  }
}

/** `SHA256:… (ED25519)`, as `ssh-keygen -l` ends its line; the line itself if it does not parse. */
export function fingerprintOf(line: string): string {
  try {
    const key = parseSshPublicKey(line);
    return `${key.fingerprint} (${KEY_TYPE_NAMES[key.algorithm] ?? key.algorithm})`;
  } catch (error) {
    if (error instanceof SshPublicKeyError) return `unreadable key (${error.message})`;
    throw error;
  }
}
