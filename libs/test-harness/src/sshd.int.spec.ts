import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startSshd, type SshdServer } from './sshd.js';

interface SshResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a program and reports its exit code and output instead of throwing on a non-zero exit. */
function runProgram(file: string, args: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<SshResult> {
  return new Promise((resolve, reject) => {
    execFile(file, [...args], { encoding: 'utf8', timeout: 30_000, env }, (error, stdout, stderr) => {
      if (error && typeof error.code !== 'number') {
        reject(error);
        return;
      }
      resolve({ code: typeof error?.code === 'number' ? error.code : 0, stdout, stderr });
    });
  });
}

/** OpenSSH client options that make `ssh` depend on nothing but what the test hands it. */
function isolatedSshArgs(server: SshdServer, knownHosts: string): string[] {
  return [
    '-F', '/dev/null',
    '-p', String(server.port),
    '-o', `UserKnownHostsFile=${knownHosts}`,
    '-o', 'GlobalKnownHostsFile=/dev/null',
    '-o', 'StrictHostKeyChecking=yes',
    '-o', 'IdentityAgent=none',
    '-o', 'ConnectTimeout=10',
  ];
}

describe('startSshd', () => {
  let server: SshdServer;
  let work: string;
  let knownHosts: string;

  before(async () => {
    server = await startSshd();
    work = await mkdtemp(join(tmpdir(), 'tracegate-ssh-client-'));
    knownHosts = join(work, 'known_hosts');
    await writeFile(knownHosts, `${server.knownHostsLine}\n`);
  });

  after(async () => {
    await server?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('runs a command for the authorised key and passes TRACEGATE_* env requests through', async () => {
    const result = await runProgram('ssh', [
      ...isolatedSshArgs(server, knownHosts),
      '-v',
      '-o', 'BatchMode=yes',
      '-o', 'IdentitiesOnly=yes',
      '-i', server.clientKeyPath,
      '-o', 'SetEnv=TRACEGATE_TRACE_ID=abc',
      `${server.user}@${server.host}`,
      'echo hello-$TRACEGATE_TRACE_ID',
    ]);
    assert.equal(result.code, 0, `ssh failed:\n${result.stderr}\n--- sshd ---\n${server.logs()}`);
    assert.equal(result.stdout, 'hello-abc\n');
    // The host key the client verified is the one whose fingerprint the harness reports.
    assert.match(server.hostKeyFingerprint, /^SHA256:[A-Za-z0-9+/]{43}$/);
    assert.ok(
      result.stderr.includes(`Server host key: ssh-ed25519 ${server.hostKeyFingerprint}`),
      `ssh -v did not show the reported fingerprint ${server.hostKeyFingerprint}:\n${result.stderr}`,
    );
    assert.match(server.clientPublicKey, /^ssh-ed25519 [A-Za-z0-9+/=]+ /);
    assert.equal((await stat(server.clientKeyPath)).mode & 0o077, 0, 'the client key must not be readable by others');
  });

  it('refuses a client that offers a key that is not authorised', async () => {
    const strangerKey = join(work, 'stranger_ed25519');
    await runProgram('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', strangerKey]).then((r) =>
      assert.equal(r.code, 0, r.stderr),
    );
    const result = await runProgram('ssh', [
      ...isolatedSshArgs(server, knownHosts),
      '-o', 'BatchMode=yes',
      '-o', 'IdentitiesOnly=yes',
      '-i', strangerKey,
      `${server.user}@${server.host}`,
      'echo should-not-run',
    ]);
    assert.notEqual(result.code, 0);
    assert.match(result.stderr, /Permission denied/);
    assert.doesNotMatch(result.stdout, /should-not-run/);
  });

  it('offers public-key authentication only by default', async () => {
    const result = await runProgram('ssh', [
      ...isolatedSshArgs(server, knownHosts),
      '-o', 'BatchMode=yes',
      '-o', 'PubkeyAuthentication=no',
      `${server.user}@${server.host}`,
      'true',
    ]);
    assert.notEqual(result.code, 0);
    // The server lists the methods it would accept; password is not among them.
    assert.match(result.stderr, /Permission denied \(publickey\)/);
  });
});

describe('startSshd with a password user', () => {
  it('logs the throwaway account in with its password, refuses a wrong one, and deletes it on stop', async () => {
    const server = await startSshd({ passwordUser: { password: 'correct horse battery staple' } });
    const work = await mkdtemp(join(tmpdir(), 'tracegate-ssh-client-'));
    try {
      const account = server.passwordUser;
      assert.ok(account, 'startSshd reported no password user');
      const knownHosts = join(work, 'known_hosts');
      await writeFile(knownHosts, `${server.knownHostsLine}\n`);

      // ssh reads passwords from a terminal; SSH_ASKPASS_REQUIRE=force makes it ask a program instead.
      const login = async (password: string): Promise<SshResult> => {
        const askpass = join(work, 'askpass.sh');
        await writeFile(askpass, `#!/bin/sh\nprintf '%s\\n' '${password}'\n`, { mode: 0o700 });
        return runProgram(
          'ssh',
          [
            ...isolatedSshArgs(server, knownHosts),
            '-o', 'PubkeyAuthentication=no',
            '-o', 'PreferredAuthentications=password',
            '-o', 'NumberOfPasswordPrompts=1',
            `${account.name}@${server.host}`,
            'id -un',
          ],
          { ...process.env, SSH_ASKPASS: askpass, SSH_ASKPASS_REQUIRE: 'force', DISPLAY: 'none' },
        );
      };

      const good = await login(account.password);
      assert.equal(good.code, 0, `password login failed:\n${good.stderr}\n--- sshd ---\n${server.logs()}`);
      assert.equal(good.stdout, `${account.name}\n`);

      const bad = await login('wrong password');
      assert.notEqual(bad.code, 0);
      assert.match(bad.stderr, /Permission denied/);

      await server.stop();
      const lookup = await runProgram('getent', ['passwd', account.name]);
      assert.notEqual(lookup.code, 0, `the account ${account.name} still exists after stop()`);
    } finally {
      await server.stop();
      await rm(work, { recursive: true, force: true });
    }
  });
});

describe('startSshd lifecycle', () => {
  it('stop() closes the port and removes the temp directory', async () => {
    const server = await startSshd();
    assert.ok(existsSync(server.dir));
    await server.stop();
    assert.equal(existsSync(server.dir), false);
    const refused = await new Promise<boolean>((resolve) => {
      const socket = connect({ host: server.host, port: server.port });
      socket.once('connect', () => {
        socket.destroy();
        resolve(false);
      });
      socket.once('error', () => resolve(true));
    });
    assert.equal(refused, true, `port ${server.port} still accepts connections after stop()`);
    await server.stop(); // idempotent
  });

  it('throws with the install hint when sshd is missing, instead of skipping', async () => {
    await assert.rejects(startSshd({ sshdPath: '/nonexistent/sbin/sshd' }), {
      message: "SSH tests need OpenSSH's server: apt-get install openssh-server",
    });
  });

  it('throws with the install hint when ssh-keygen is missing', async () => {
    await assert.rejects(startSshd({ sshKeygenPath: '/nonexistent/bin/ssh-keygen' }), {
      message: /apt-get install openssh-client/,
    });
  });

  it('reports sshd’s own log when it cannot start', async () => {
    await assert.rejects(startSshd({ extraConfig: ['NoSuchSshdKeyword yes'] }), (error: Error) => {
      assert.match(error.message, /sshd did not come up/);
      assert.match(error.message, /NoSuchSshdKeyword/);
      return true;
    });
  });
});
