import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { access, chmod, constants, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { delimiter, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from './free-port.js';

/**
 * A real OpenSSH server (Debian's `openssh-server`) on a loopback port with a generated
 * configuration, for tests of the gateway's SSH side. Nothing is mocked: clients are the real
 * `ssh`/`scp`, and the server is `/usr/sbin/sshd` in the foreground.
 *
 * Authentication
 * - Public key, always: a generated ed25519 client key pair is authorised for {@link SshdServer.user},
 *   the user the tests run as (root here; `PermitRootLogin prohibit-password` lets root in by key only).
 * - Password, off by default. Root's password cannot be used (we must not change the machine's root
 *   password, and `prohibit-password` refuses it anyway), so password tests ask for a throwaway local
 *   account with {@link SshdOptions.passwordUser}: it is created with `useradd` (which needs root),
 *   given the password, and deleted again by `stop()`.
 *
 * The server accepts `TRACEGATE_*` environment requests (`ssh -o SetEnv=TRACEGATE_TRACE_ID=…`),
 * which is how SSH clients attach reasoning-trace ids.
 */

export interface SshdOptions {
  /**
   * Whether sshd offers password authentication. Default `false`; `true` when
   * {@link passwordUser} is given (a password account without password authentication is useless).
   */
  readonly passwordAuthentication?: boolean;
  /**
   * Create a throwaway local account that logs in with this password. Needs root (`useradd`,
   * `chpasswd`); the account's home is inside the server's temp directory and the account is
   * deleted by `stop()`. `name` defaults to a random `tg…` name.
   */
  readonly passwordUser?: { readonly password: string; readonly name?: string };
  /** How long to wait for the port to answer with an `SSH-2.0-` banner. Default 15 s. */
  readonly readyTimeoutMs?: number;
  /** The server binary. Default `/usr/sbin/sshd` (sshd insists on an absolute path). */
  readonly sshdPath?: string;
  /** `ssh-keygen`. Default: looked up on `PATH`. */
  readonly sshKeygenPath?: string;
  /** Extra `sshd_config` lines, appended after the generated ones. */
  readonly extraConfig?: readonly string[];
}

export interface SshdServer {
  readonly host: '127.0.0.1';
  readonly port: number;
  /** The host key's fingerprint as `ssh-keygen -lf` prints it: `SHA256:…`. */
  readonly hostKeyFingerprint: string;
  /** A `known_hosts` line for this server: `[127.0.0.1]:<port> ssh-ed25519 AAAA…`. */
  readonly knownHostsLine: string;
  /** The user the client key logs in as: the user running the tests. */
  readonly user: string;
  /** The authorised client private key (mode 0600, usable with `ssh -i`). */
  readonly clientKeyPath: string;
  /** The authorised client public key, one OpenSSH line: `ssh-ed25519 AAAA… comment`. */
  readonly clientPublicKey: string;
  /** The password account, when {@link SshdOptions.passwordUser} was given. */
  readonly passwordUser?: { readonly name: string; readonly password: string };
  /** The temp directory holding keys, config, pid file and log; removed by `stop()`. */
  readonly dir: string;
  /** What sshd has logged so far (LogLevel VERBOSE, the most recent 256 KiB). */
  logs(): string;
  /** Stops sshd, deletes the password account if any, removes the temp directory. Idempotent. */
  stop(): Promise<void>;
}

const SSHD_MISSING = "SSH tests need OpenSSH's server: apt-get install openssh-server";
const SSH_KEYGEN_MISSING = "SSH tests need OpenSSH's client tools (ssh-keygen): apt-get install openssh-client";
const PRIVSEP_DIR = '/run/sshd';
const LOG_LIMIT = 256 * 1024;
const BIND_ATTEMPTS = 3;

/** Servers not yet stopped, killed if the test process exits without calling `stop()`. */
const running = new Set<{ child: ChildProcess; dir: string; account?: string }>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const entry of running) {
      entry.child.kill('SIGKILL');
      rmSync(entry.dir, { recursive: true, force: true });
      // A leftover password account is not removed here: `exit` handlers cannot wait for userdel.
    }
  });
}

export async function startSshd(options: SshdOptions = {}): Promise<SshdServer> {
  const sshdPath = options.sshdPath ?? '/usr/sbin/sshd';
  const sshKeygen = await findSshKeygen(options.sshKeygenPath);
  try {
    await access(sshdPath, constants.X_OK);
  } catch {
    throw new Error(SSHD_MISSING);
  }
  await ensurePrivsepDir();

  const dir = await mkdtemp(join(tmpdir(), 'tracegate-sshd-'));
  let account: string | undefined;
  try {
    const hostKey = join(dir, 'ssh_host_ed25519_key');
    const clientKeyPath = join(dir, 'client_ed25519');
    await run(sshKeygen, ['-q', '-t', 'ed25519', '-N', '', '-C', 'tracegate-test-sshd-host', '-f', hostKey]);
    await run(sshKeygen, ['-q', '-t', 'ed25519', '-N', '', '-C', 'tracegate-test-client', '-f', clientKeyPath]);
    const clientPublicKey = (await readFile(`${clientKeyPath}.pub`, 'utf8')).trim();
    const authorizedKeys = join(dir, 'authorized_keys');
    await writeFile(authorizedKeys, `${clientPublicKey}\n`, { mode: 0o600 });

    const hostPublicKey = (await readFile(`${hostKey}.pub`, 'utf8')).trim().split(/\s+/);
    const keyType = hostPublicKey[0];
    const keyBlob = hostPublicKey[1];
    if (keyType === undefined || keyBlob === undefined) {
      throw new Error(`ssh-keygen wrote an unreadable host public key in ${hostKey}.pub`);
    }
    const fingerprintLine = await run(sshKeygen, ['-l', '-E', 'sha256', '-f', `${hostKey}.pub`]);
    const hostKeyFingerprint = fingerprintLine.split(/\s+/)[1] ?? '';
    if (!hostKeyFingerprint.startsWith('SHA256:')) {
      throw new Error(`ssh-keygen -lf printed no SHA256 fingerprint: ${fingerprintLine}`);
    }

    const user = userInfo().username;
    let passwordUser: { name: string; password: string } | undefined;
    if (options.passwordUser !== undefined) {
      const name = options.passwordUser.name ?? `tg${randomBytes(4).toString('hex')}`;
      const home = join(dir, 'home');
      await mkdir(home);
      // mkdtemp makes the directory 0700; the account must be able to reach its home inside it.
      // The private keys inside stay 0600.
      await chmod(dir, 0o711);
      await createAccount(name, home, options.passwordUser.password);
      account = name;
      passwordUser = { name, password: options.passwordUser.password };
    }
    const passwordAuthentication = options.passwordAuthentication ?? passwordUser !== undefined;

    const configPath = join(dir, 'sshd_config');
    const pidFile = join(dir, 'sshd.pid');
    const allowUsers = [user, ...(passwordUser ? [passwordUser.name] : [])];

    for (let attempt = 1; ; attempt += 1) {
      const port = await freePort();
      const config = [
        `Port ${port}`,
        'ListenAddress 127.0.0.1',
        'AddressFamily inet',
        `HostKey ${hostKey}`,
        `PidFile ${pidFile}`,
        `AuthorizedKeysFile ${authorizedKeys}`,
        'UsePAM no',
        'StrictModes no',
        'PubkeyAuthentication yes',
        `PasswordAuthentication ${passwordAuthentication ? 'yes' : 'no'}`,
        'KbdInteractiveAuthentication no',
        'PermitEmptyPasswords no',
        'PermitRootLogin prohibit-password',
        `AllowUsers ${allowUsers.join(' ')}`,
        'AcceptEnv TRACEGATE_*',
        'PermitUserEnvironment no',
        'LogLevel VERBOSE',
        'PrintMotd no',
        'X11Forwarding no',
        'Subsystem sftp internal-sftp',
        ...(options.extraConfig ?? []),
        '',
      ].join('\n');
      await writeFile(configPath, config, { mode: 0o600 });

      const child = spawn(sshdPath, ['-D', '-e', '-f', configPath], { stdio: ['ignore', 'pipe', 'pipe'] });
      let log = '';
      const append = (chunk: Buffer): void => {
        log += chunk.toString('utf8');
        if (log.length > LOG_LIMIT) log = log.slice(log.length - LOG_LIMIT);
      };
      child.stdout?.on('data', append);
      child.stderr?.on('data', append);
      const exited = new Promise<string>((resolve) => {
        child.once('exit', (code, signal) => resolve(signal ? `signal ${signal}` : `code ${code}`));
        child.once('error', (error) => resolve(`spawn error: ${error.message}`));
      });
      const entry = { child, dir, ...(account !== undefined ? { account } : {}) };
      running.add(entry);
      installExitHook();

      const ready = await waitForBanner(port, exited, options.readyTimeoutMs ?? 15_000);
      if (ready !== true) {
        child.kill('SIGKILL');
        await exited;
        running.delete(entry);
        if (attempt < BIND_ATTEMPTS && /Address already in use/.test(log)) continue;
        throw new Error(`sshd did not come up on 127.0.0.1:${port}: ${ready}\n--- sshd log (tail) ---\n${tail(log)}`);
      }

      let stopped: Promise<void> | undefined;
      return {
        host: '127.0.0.1',
        port,
        hostKeyFingerprint,
        knownHostsLine: `[127.0.0.1]:${port} ${keyType} ${keyBlob}`,
        user,
        clientKeyPath,
        clientPublicKey,
        ...(passwordUser ? { passwordUser } : {}),
        dir,
        logs: () => log,
        stop: () => {
          stopped ??= (async () => {
            if (child.exitCode === null && child.signalCode === null) {
              child.kill('SIGTERM');
              const timer = new AbortController();
              const gone = await Promise.race([
                exited.then(() => true),
                sleep(5_000, false, { signal: timer.signal }).catch(() => false),
              ]);
              timer.abort();
              if (!gone) {
                child.kill('SIGKILL');
                await exited;
              }
            }
            running.delete(entry);
            await cleanup(dir, account);
          })();
          return stopped;
        },
      };
    }
  } catch (error) {
    try {
      await cleanup(dir, account);
    } catch (cleanupError) {
      throw new AggregateError([error, cleanupError], `${String(error)} (and cleaning up failed: ${String(cleanupError)})`);
    }
    throw error;
  }
}

async function cleanup(dir: string, account: string | undefined): Promise<void> {
  let failure: unknown;
  if (account !== undefined) {
    try {
      await deleteAccount(account);
    } catch (error) {
      failure = error;
    }
  }
  await rm(dir, { recursive: true, force: true });
  if (failure !== undefined) throw failure;
}

async function findSshKeygen(explicit: string | undefined): Promise<string> {
  const candidates = explicit !== undefined
    ? [explicit]
    : (process.env['PATH'] ?? '/usr/bin:/bin').split(delimiter).filter((d) => d !== '').map((d) => join(d, 'ssh-keygen'));
  for (const candidate of candidates) {
    try {
      await access(candidate, constants.X_OK);
      return candidate;
    } catch {
      // try the next one
    }
  }
  throw new Error(SSH_KEYGEN_MISSING);
}

/** sshd refuses to start without its privilege separation directory (root-owned, not writable by others). */
async function ensurePrivsepDir(): Promise<void> {
  try {
    await mkdir(PRIVSEP_DIR, { recursive: true, mode: 0o755 });
  } catch (error) {
    throw new Error(
      `sshd needs its privilege separation directory ${PRIVSEP_DIR} and it could not be created ` +
        `(run the SSH tests as root, or create it once with: install -d -m 0755 ${PRIVSEP_DIR}): ${String(error)}`,
    );
  }
}

/** Resolves `true` once the port answers with an SSH-2.0 banner; otherwise a reason. */
async function waitForBanner(port: number, exited: Promise<string>, timeoutMs: number): Promise<true | string> {
  const deadline = Date.now() + timeoutMs;
  let exitReason: string | undefined;
  void exited.then((reason) => {
    exitReason = reason;
  });
  let last = 'no attempt made';
  while (Date.now() < deadline) {
    if (exitReason !== undefined) return `sshd exited (${exitReason})`;
    const banner = await readBanner(port, Math.max(100, Math.min(2_000, deadline - Date.now())));
    if (banner.ok) return true;
    last = banner.reason;
    await sleep(25);
  }
  return `no SSH-2.0 banner within ${timeoutMs} ms (last attempt: ${last})`;
}

function readBanner(port: number, timeoutMs: number): Promise<{ ok: true } | { ok: false; reason: string }> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    let received = '';
    const finish = (result: { ok: true } | { ok: false; reason: string }): void => {
      socket.destroy();
      resolve(result);
    };
    socket.setTimeout(timeoutMs, () => finish({ ok: false, reason: 'timed out waiting for the banner' }));
    socket.on('error', (error) => finish({ ok: false, reason: error.message }));
    socket.on('close', () => finish({ ok: false, reason: `closed after ${JSON.stringify(received)}` }));
    socket.on('data', (chunk: Buffer) => {
      received += chunk.toString('latin1');
      const newline = received.indexOf('\n');
      if (newline === -1 && received.length < 256) return;
      const line = received.slice(0, newline === -1 ? undefined : newline);
      finish(line.startsWith('SSH-2.0-') ? { ok: true } : { ok: false, reason: `unexpected banner ${JSON.stringify(line)}` });
    });
  });
}

async function createAccount(name: string, home: string, password: string): Promise<void> {
  if (!/^[a-z_][a-z0-9_-]{0,30}$/.test(name)) throw new Error(`not a valid account name: ${name}`);
  if (/[:\n]/.test(password)) throw new Error('the password user’s password may not contain ":" or a newline');
  // /etc/passwd is locked while another useradd/userdel runs (parallel test files): retry briefly.
  await withLockRetry(() => run('useradd', ['--home-dir', home, '--no-create-home', '--shell', '/bin/sh', '--user-group', name]));
  try {
    await withLockRetry(() => run('chpasswd', [], `${name}:${password}\n`));
    await run('chown', [`${name}:${name}`, home]);
  } catch (error) {
    await deleteAccount(name);
    throw error;
  }
}

async function deleteAccount(name: string): Promise<void> {
  try {
    await withLockRetry(() => run('userdel', [name]));
  } catch (error) {
    // Do not hide a leftover account: it would accept the test password on this machine.
    throw new Error(`could not delete the test account ${name}; remove it with: userdel ${name}: ${String(error)}`);
  }
}

async function withLockRetry<T>(action: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await action();
    } catch (error) {
      // "cannot lock /etc/passwd": another useradd/userdel; "currently used by process": a session
      // of the account is still closing after sshd stopped.
      if (attempt >= 20 || !/lock|currently used/i.test(String(error))) throw error;
      await sleep(50 * attempt);
    }
  }
}

function run(file: string, args: readonly string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(file, [...args], { encoding: 'utf8', timeout: 30_000 }, (error, stdout, stderr) => {
      if (error) {
        reject(new Error(`${file} ${args.join(' ')} failed: ${error.message}${stderr ? `\n${stderr.trim()}` : ''}`));
      } else {
        resolve(stdout.trim());
      }
    });
    if (input !== undefined) child.stdin?.end(input);
    else child.stdin?.end();
  });
}

function tail(log: string, lines = 40): string {
  const all = log.trimEnd().split('\n');
  return all.slice(-lines).join('\n') || '(sshd logged nothing)';
}
