import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { expectEventually, pollUntil, startPostgres, startSshd, type SshdServer } from '@tracegate/test-harness';
import { isolatedEnvironment, runTracegate, TracegateProcess } from './support/tracegate-process.js';

const EXAMPLE_POLICIES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../examples/policies');

interface ShownStatement {
  readonly id: string;
  readonly maskedText: string;
  readonly traceId?: string;
  readonly effect?: string;
  readonly commandTag?: string;
  readonly approvalState?: string;
}

/**
 * SSH end to end through every service: real OpenSSH `ssh` in front, a real `sshd` target behind,
 * logged in to with the broker's key and its pinned host key. The repository's example policies
 * decide each command (inspection allowed, privilege escalation refused, anything else held for an
 * operator), the default masking profile masks output, traces come in the TRACEGATE_TRACE_ID env
 * request, and the audit service replays the session with its masked output and verifies it.
 */
describe('SSH through tracegate end to end', () => {
  let sshd: SshdServer;
  let postgres: Awaited<ReturnType<typeof startPostgres>>;
  let home: string;
  let environment: Record<string, string>;
  let tracegate: TracegateProcess | undefined;
  let knownHosts: string;
  let askpass: string;
  const keys: Record<string, string> = {};

  const ssh = (name: string, command: string, sshOptions: string[] = []) => {
    const child = spawn(
      'ssh',
      [
        ...sshOptions,
        '-p', environment.TRACEGATE_GATEWAY_SSH_PORT!,
        '-o', `UserKnownHostsFile=${knownHosts}`,
        '-o', 'StrictHostKeyChecking=yes',
        '-o', 'PubkeyAuthentication=no',
        '-o', 'PreferredAuthentications=password',
        '-o', 'NumberOfPasswordPrompts=1',
        '-l', `${name}:web-1`,
        '127.0.0.1',
        command,
      ],
      { env: { ...process.env, SSH_ASKPASS: askpass, SSH_ASKPASS_REQUIRE: 'force', DISPLAY: ':0', TEST_API_KEY: keys[name]! }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const done = once(child, 'exit').then(([code]) => ({ code: code as number | null, stdout, stderr }));
    return { done, stderr: () => stderr };
  };
  const ran = (name: string, command: string, sshOptions: string[] = []) => ssh(name, command, sshOptions).done;
  const as = (name: string) => ({ ...environment, TRACEGATE_IDENTITY: name, TRACEGATE_API_KEY: keys[name]! });
  const statements = async (identity: string): Promise<{ session: string; statements: ShownStatement[] }[]> => {
    const list = await runTracegate(['sessions', 'list', '--identity', identity, '--json'], environment);
    assert.equal(list.code, 0, list.stderr);
    const ids = (JSON.parse(list.stdout) as { sessions: { id: string }[] }).sessions.map((s) => s.id);
    return Promise.all(
      ids.map(async (id) => {
        const shown = await runTracegate(['sessions', 'show', id, '--json'], environment);
        assert.equal(shown.code, 0, shown.stderr);
        return { session: id, statements: (JSON.parse(shown.stdout) as { statements: ShownStatement[] }).statements };
      }),
    );
  };

  before(async () => {
    sshd = await startSshd();
    home = mkdtempSync(path.join(tmpdir(), 'tracegate-e2e-ssh-'));
    postgres = await startPostgres();
    environment = { ...(await isolatedEnvironment(home)), DATABASE_URL: await postgres.createDatabase('tracegate'), TRACEGATE_POLICY_DIR: EXAMPLE_POLICIES };
    tracegate = await TracegateProcess.startHealthy(environment);
    const added = await runTracegate(
      ['target', 'add', 'web-1', '--type', 'ssh', '--host', sshd.host, '--port', String(sshd.port), '--user', sshd.user, '--host-key', sshd.knownHostsLine, '--secret-file', sshd.clientKeyPath, '--label', 'env=staging'],
      environment,
    );
    assert.equal(added.code, 0, added.stderr);
    for (const [name, kind, group] of [['ops-bot', 'agent', 'bots'], ['other-bot', 'agent', 'bots'], ['olga', 'human', 'ops']] as const) {
      const created = await runTracegate(['key', 'create', '--name', name, '--kind', kind, '--group', group], environment);
      assert.equal(created.code, 0, created.stderr);
      keys[name] = /(tg_[A-Za-z0-9_-]+)/.exec(created.stdout)![1]!;
    }
    // The gateway's host key, as a client pins it: read from the all-in-one's data folder.
    const { stdout: publicKey } = await promisify(execFile)('ssh-keygen', ['-y', '-f', path.join(home, 'gateway-ssh-host-key.pem')]);
    knownHosts = path.join(home, 'known_hosts');
    writeFileSync(knownHosts, `[127.0.0.1]:${environment.TRACEGATE_GATEWAY_SSH_PORT} ${publicKey.trim()}\n`);
    askpass = path.join(home, 'askpass.sh');
    writeFileSync(askpass, `#!/bin/sh\nprintf '%s\\n' "$TEST_API_KEY"\n`, { mode: 0o700 });
  });

  after(async () => {
    await tracegate?.terminate('SIGTERM');
    await sshd?.stop();
    await postgres?.stop();
    if (home) rmSync(home, { recursive: true, force: true });
  });

  it('masks what an agent reads, links its trace, and replays and verifies the session', async () => {
    const secrets = path.join(home, 'app.env');
    writeFileSync(secrets, 'DATABASE_URL=postgres://svc:hunter2@db.internal/app\nOWNER=ada.lovelace@example.org\nAWS_ACCESS_KEY_ID=AKIAZ7Q4N2XW5PLM3KTR\nREGION=eu-west-1\n');
    const file = path.join(home, 'trace.json');
    writeFileSync(file, JSON.stringify({ agent: { name: 'ops-bot', model: 'none' }, prompt: 'check the app config for the region', confidence: 0.9, tags: ['ops'] }));
    const submitted = await runTracegate(['traces', 'submit', '--file', file, '--json'], as('ops-bot'));
    assert.equal(submitted.code, 0, submitted.stderr);
    const traceId = (JSON.parse(submitted.stdout) as { id: string }).id;

    const read = await ran('ops-bot', `cat ${secrets}`, ['-o', `SetEnv=TRACEGATE_TRACE_ID=${traceId}`]);
    assert.equal(read.code, 0, read.stderr);
    assert.match(read.stdout, /REGION=eu-west-1/);
    for (const raw of ['hunter2', 'ada.lovelace@example.org', 'AKIAZ7Q4N2XW5PLM3KTR']) assert.ok(!read.stdout.includes(raw), `${raw} reached the agent:\n${read.stdout}`);

    const found = await pollUntil(async () => {
      for (const { session, statements: list } of await statements('ops-bot')) {
        const statement = list.find((s) => s.maskedText === `cat ${secrets}` && s.commandTag);
        if (statement) return { session, statement };
      }
      return undefined;
    }, { timeoutMs: 30_000, description: 'the command in the audit projection' });
    assert.equal(found.statement.traceId, traceId);
    assert.equal(found.statement.commandTag, 'exit 0');

    const replayed = await runTracegate(['sessions', 'replay', found.session], environment);
    assert.equal(replayed.code, 0, replayed.stderr);
    assert.match(replayed.stdout, /REGION=eu-west-1/);
    for (const raw of ['hunter2', 'ada.lovelace@example.org', 'AKIAZ7Q4N2XW5PLM3KTR']) assert.ok(!replayed.stdout.includes(raw), `${raw} is in the replay`);
    await expectEventually(async () => {
      const verified = await runTracegate(['sessions', 'verify', found.session], environment);
      assert.equal(verified.code, 0, verified.stdout + verified.stderr);
      assert.match(verified.stdout, /is intact/);
    });
  });

  it('refuses privilege escalation and a foreign trace, before the target sees either', async () => {
    const marker = path.join(home, 'escalated');
    const refused = await ran('ops-bot', `sudo touch ${marker}`);
    assert.equal(refused.code, 126);
    assert.match(refused.stderr, /tracegate: agents may not .*sudo/);
    assert.equal(existsSync(marker), false);

    const file = path.join(home, 'theirs.json');
    writeFileSync(file, JSON.stringify({ agent: { name: 'other-bot' }, prompt: 'mine', confidence: 0.9 }));
    const theirs = (JSON.parse((await runTracegate(['traces', 'submit', '--file', file, '--json'], as('other-bot'))).stdout) as { id: string }).id;
    const foreign = await ran('ops-bot', 'uptime', ['-o', `SetEnv=TRACEGATE_TRACE_ID=${theirs}`]);
    assert.equal(foreign.code, 126);
    assert.match(foreign.stderr, /another identity/);
  });

  it('logs an agent in with its registered public key, and refuses a key nobody registered', async () => {
    const byKey = ['-o', 'PubkeyAuthentication=yes', '-o', 'PreferredAuthentications=publickey', '-o', 'IdentitiesOnly=yes', '-o', 'BatchMode=yes', '-i', sshd.clientKeyPath];
    const before = await ran('ops-bot', 'uptime', byKey);
    assert.equal(before.code, 255, 'no key registered yet');
    assert.match(before.stderr, /Permission denied/);
    const registered = await runTracegate(['key', 'add-ssh', 'ops-bot', `${sshd.clientKeyPath}.pub`], environment);
    assert.equal(registered.code, 0, registered.stderr);
    const after = await ran('ops-bot', 'uptime', byKey);
    assert.equal(after.code, 0, after.stderr);
    assert.match(after.stdout, /load average/);
    const otherName = await ran('other-bot', 'uptime', byKey);
    assert.equal(otherName.code, 255, "one identity's key does not log in another");
  });

  it('holds a change for an operator, who approves it in the CLI, and only then runs it', async () => {
    const marker = path.join(home, 'deployed');
    const held = ssh('ops-bot', `touch ${marker}`);
    const requestId = await pollUntil(() => /held for approval \(request ([^)]+)\)/.exec(held.stderr())?.[1], { timeoutMs: 60_000, description: 'the hold notice on stderr' });
    assert.equal(existsSync(marker), false, 'nothing runs before approval');
    const approved = await runTracegate(['approvals', 'approve', requestId], as('olga'));
    assert.equal(approved.code, 0, approved.stderr);
    const result = await held.done;
    assert.equal(result.code, 0, result.stderr);
    assert.equal(existsSync(marker), true);
  });
});
