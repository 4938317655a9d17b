import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import ssh2 from 'ssh2';
import { compileProfile, DEFAULT_PROFILE } from '@tracegate/masking-engine';
import { createLogger } from '@tracegate/runtime';
import { pollUntil, startSshd, type SshdServer } from '@tracegate/test-harness';
import { TraceRefusal } from '../postgres/ports.js';
import type {
  ClientAuthenticator,
  CredentialBroker,
  MaskingProfiles,
  ReviewDesk,
  ReviewOutcome,
  ReviewRequest,
  StatementContext,
  StatementDecision,
  StatementJudge,
  TraceFeatures,
  TraceRegistry,
  VerifiedIdentity,
} from '../postgres/ports.js';
import { MemoryRecorder, runProgram, type ProcessResult } from '../postgres/testing/gateway-fixture.js';
import { SshListener } from './ssh-listener.js';

// The SSH side against real OpenSSH on both ends: `ssh` as the client, `sshd` as the target. The
// gateway's ports are small in-process implementations, as in the Postgres int tier; the e2e tier
// runs the same paths through the real services.

const AGENT: VerifiedIdentity = { id: 'id-agent-1', name: 'agent-1', kind: 'agent', groups: ['bots'] };
const API_KEY = 'tg_key_agent_1_secret';

/** Denies `rm` and anything naming "forbidden"; holds `systemctl` for review; allows the rest. */
class ShellJudge implements StatementJudge {
  readonly seen: StatementContext[] = [];
  async decide(statement: StatementContext): Promise<StatementDecision> {
    this.seen.push(statement);
    const base = { policyVersion: 'v-test', maskingProfile: '' };
    if (/^\s*rm\b|forbidden/.test(statement.text)) return { ...base, effect: 'deny', rule: 'no-destruction', reason: 'agents may not delete files' };
    if (/^\s*systemctl\b/.test(statement.text)) {
      return { ...base, effect: 'review', rule: 'services-need-review', reason: 'service changes need an operator', review: { reviewerGroup: 'ops', quorum: 1, timeoutSeconds: 60 } };
    }
    return { ...base, effect: 'allow', rule: 'inspect', reason: '' };
  }
}

class TestDesk implements ReviewDesk {
  readonly requests: ReviewRequest[] = [];
  next: ReviewOutcome['state'] = 'approved';
  async hold(request: ReviewRequest, _signal: AbortSignal, onOpened: (requestId: string) => void): Promise<ReviewOutcome> {
    this.requests.push(request);
    const requestId = `req-${this.requests.length}`;
    onOpened(requestId);
    await new Promise((r) => setTimeout(r, 200));
    return this.next === 'approved' ? { state: 'approved', requestId, approvers: ['ops-1'] } : { state: this.next, requestId, reason: 'not during the freeze' };
  }
}

class TestTraces implements TraceRegistry {
  readonly owners = new Map<string, string>([
    ['t-own', AGENT.id],
    ['t-own-2', AGENT.id],
    ['t-foreign', 'id-someone-else'],
  ]);
  async resolve(traceId: string, identity: VerifiedIdentity): Promise<TraceFeatures> {
    const owner = this.owners.get(traceId);
    if (!owner) throw new TraceRefusal(`trace ${traceId} does not exist; submit it first`);
    if (owner !== identity.id) throw new TraceRefusal(`trace ${traceId} was submitted by another identity; an agent can only attach its own traces`);
    return { confidence: 0.8, model: 'model-a', tags: ['ops'] };
  }
  async submitInline(): Promise<{ traceId: string; features: TraceFeatures }> {
    throw new TraceRefusal('inline traces are not taken over SSH');
  }
}

describe('SSH through the gateway, with OpenSSH on both sides', () => {
  let sshd: SshdServer;
  let listener: SshListener;
  let port: number;
  const dir = mkdtempSync(path.join(tmpdir(), 'gateway-ssh-'));
  const recorder = new MemoryRecorder();
  const judge = new ShellJudge();
  const desk = new TestDesk();
  const registeredKeys = new Map<string, string>();
  let knownHosts: string;
  let askpass: string;
  let targetHostKey: string;

  before(async () => {
    sshd = await startSshd();
    targetHostKey = sshd.knownHostsLine.split(' ').slice(1).join(' ');
    const hostKey = ssh2.utils.generateKeyPairSync('ed25519');
    const authenticator: ClientAuthenticator = {
      async authenticate(user, password) {
        return user === AGENT.name && password === API_KEY ? AGENT : undefined;
      },
      async authenticatePublicKey(user, publicKey) {
        return user === AGENT.name && registeredKeys.get(publicKey) === user ? AGENT : undefined;
      },
    };
    const clientKey = readFileSync(sshd.clientKeyPath, 'utf8');
    const broker: CredentialBroker = {
      async checkout(target) {
        const hostKey = target === 'web-1' ? targetHostKey : target === 'impostor' ? ssh2.utils.generateKeyPairSync('ed25519').public : undefined;
        if (!hostKey) throw new Error(`target "${target}" is not registered with tracegate`);
        return {
          leaseId: `lease-${target}`,
          endpoint: { name: target, host: sshd.host, port: sshd.port, database: '', user: sshd.user, password: clientKey, tls: 'disable' },
          labels: { env: 'test' },
          hostKey,
        };
      },
      async release() {},
    };
    const profile = compileProfile(DEFAULT_PROFILE, { hashKey: randomBytes(32) });
    const masking: MaskingProfiles = { profile: (name) => (name === 'default' ? profile : undefined) };
    listener = new SshListener(
      { host: '127.0.0.1', port: 0, hostKeys: [hostKey.private], upstreamTimeoutMs: 10_000, maskingFallbackProfile: 'default', recordedLines: 50 },
      { authenticator, broker, judge, recorder, reviews: desk, traces: new TestTraces(), masking },
      createLogger('gateway-ssh-test', 'silent'),
    );
    const address = await listener.listen();
    port = Number(address.slice(address.lastIndexOf(':') + 1));
    knownHosts = path.join(dir, 'known_hosts');
    writeFileSync(knownHosts, `[127.0.0.1]:${port} ${hostKey.public}\n`);
    askpass = path.join(dir, 'askpass.sh');
    writeFileSync(askpass, `#!/bin/sh\nprintf '%s\\n' "$TEST_API_KEY"\n`, { mode: 0o700 });
  });

  after(async () => {
    await listener?.close(2000);
    await sshd?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Real `ssh`, logging in with the API key as password (through SSH_ASKPASS, no terminal needed). */
  const ssh = (login: string, command: string[], options: { key?: string; sshOptions?: string[]; input?: string } = {}): Promise<ProcessResult> =>
    runProgram(
      'ssh',
      [
        // ssh keeps the first value it is given for an option: the test's own come first.
        ...(options.sshOptions ?? []),
        '-p', String(port),
        '-o', `UserKnownHostsFile=${knownHosts}`,
        '-o', 'StrictHostKeyChecking=yes',
        '-o', 'PubkeyAuthentication=no',
        '-o', 'PreferredAuthentications=password',
        '-o', 'NumberOfPasswordPrompts=1',
        '-o', 'ConnectTimeout=10',
        '-l', login,
        '127.0.0.1',
        ...command,
      ],
      { env: { SSH_ASKPASS: askpass, SSH_ASKPASS_REQUIRE: 'force', TEST_API_KEY: options.key ?? API_KEY, DISPLAY: ':0' }, ...(options.input !== undefined ? { input: options.input } : {}) },
    );

  const statementFor = (text: string) => recorder.statements.find((s) => s.text === text);

  it('runs a command on the target as the broker\'s user and relays output and exit status', async () => {
    const result = await ssh('agent-1:web-1', ['echo hello from $(whoami); echo to-stderr >&2; exit 3']);
    assert.equal(result.code, 3, result.stderr);
    assert.equal(result.stdout, `hello from ${sshd.user}\n`);
    assert.match(result.stderr, /to-stderr/);
    const statement = statementFor('echo hello from $(whoami); echo to-stderr >&2; exit 3');
    assert.ok(statement, 'the command is recorded');
    assert.equal(statement.effect, 'allow');
    await pollUntil(() => statement.completion !== undefined, { timeoutMs: 5000, description: 'completion recorded' });
    assert.equal(statement.completion!.commandTag, 'exit 3');
    assert.equal(statement.completion!.rows, 2);
    const session = [...recorder.sessions.values()].find((s) => s.target === 'web-1');
    assert.equal(session?.protocol, 'ssh');
    assert.equal(session?.identity.id, AGENT.id);
    assert.match(session?.applicationName ?? '', /OpenSSH/);
    const decided = judge.seen.find((s) => s.text === 'echo hello from $(whoami); echo to-stderr >&2; exit 3');
    assert.equal(decided?.protocol, 'ssh-exec');
    assert.deepEqual(decided?.targetLabels, { env: 'test' });
  });

  it('masks a secret the target writes in two pieces, in the output and in what is recorded', async () => {
    const key = `AKIA${randomBytes(8).toString('hex').toUpperCase()}`;
    const email = `ada.${randomBytes(3).toString('hex')}@example.org`;
    const command = `printf '%s' '${key.slice(0, 9)}'; sleep 0.3; printf '%s\\n' '${key.slice(9)}'; printf 'mail %s' '${email.slice(0, 6)}'; sleep 0.3; printf '%s\\n' '${email.slice(6)}'`;
    const result = await ssh('agent-1:web-1', [command]);
    assert.equal(result.code, 0, result.stderr);
    assert.ok(!result.stdout.includes(key) && !result.stdout.includes(key.slice(9)), `the key reached the client: ${result.stdout}`);
    assert.ok(!result.stdout.includes(email), `the email reached the client: ${result.stdout}`);
    assert.match(result.stdout, /mail /);
    const statement = recorder.statements.find((s) => s.text.startsWith("printf '%s' '"));
    assert.ok(statement);
    assert.ok(!statement.text.includes(email), 'the recorded command line is masked');
    await pollUntil(() => statement.completion !== undefined, { timeoutMs: 5000, description: 'completion recorded' });
    const recorded = JSON.stringify(recorder.results.get(statement.statementId));
    assert.ok(recorded.includes('mail '), recorded);
    assert.ok(!recorded.includes(key) && !recorded.includes(email), `a raw value was recorded: ${recorded}`);
    assert.ok(Object.keys(statement.completion!.masked ?? {}).length > 0, 'the hits are counted');
  });

  it('refuses a denied command before the target sees it: reason on stderr, exit status 126', async () => {
    const marker = path.join(dir, `forbidden-${randomBytes(4).toString('hex')}`);
    const result = await ssh('agent-1:web-1', [`touch ${marker}`]);
    assert.equal(result.code, 126);
    assert.match(result.stderr, /tracegate: agents may not delete files/);
    assert.equal(existsSync(marker), false, 'the target ran a denied command');
    assert.equal([...recorder.statements].reverse().find((s) => s.text.startsWith('touch '))?.effect, 'deny');
    assert.doesNotMatch(sshd.logs(), new RegExp(path.basename(marker)));
  });

  it('holds a command for review and runs it once approved; a denial refuses it', async () => {
    desk.next = 'approved';
    const approved = await ssh('agent-1:web-1', ['systemctl --version >/dev/null 2>&1; echo ran']);
    assert.equal(approved.code, 0, approved.stderr);
    assert.match(approved.stderr, /held for approval \(request req-\d+\)/);
    assert.equal(approved.stdout, 'ran\n');
    assert.equal(desk.requests.at(-1)?.maskedCommand, 'systemctl --version >/dev/null 2>&1; echo ran');
    desk.next = 'denied';
    const denied = await ssh('agent-1:web-1', ['systemctl restart nothing; echo ran']);
    assert.equal(denied.code, 126);
    assert.equal(denied.stdout, '');
    assert.match(denied.stderr, /was denied: not during the freeze/);
  });

  it('takes the trace from TRACEGATE_TRACE_ID and never passes it to the target', async () => {
    const result = await ssh('agent-1:web-1', ['env'], { sshOptions: ['-o', 'SetEnv=TRACEGATE_TRACE_ID=t-own LANG=C.UTF-8'] });
    assert.equal(result.code, 0, result.stderr);
    assert.doesNotMatch(result.stdout, /TRACEGATE/);
    const statement = [...recorder.statements].reverse().find((s) => s.text === 'env');
    assert.equal(statement?.traceId, 't-own');
    const decided = [...judge.seen].reverse().find((s) => s.text === 'env');
    assert.deepEqual(decided?.trace, { confidence: 0.8, model: 'model-a', tags: ['ops'] });

    const foreign = await ssh('agent-1:web-1', ['echo should-not-run'], { sshOptions: ['-o', 'SetEnv=TRACEGATE_TRACE_ID=t-foreign'] });
    assert.equal(foreign.code, 126);
    assert.match(foreign.stderr, /submitted by another identity/);
    assert.equal(foreign.stdout, '');
  });

  it('links each command on one multiplexed connection to its own trace', async () => {
    const control = path.join(dir, 'mux.sock');
    const mux = ['-o', `ControlPath=${control}`];
    const master = await ssh('agent-1:web-1', [], { sshOptions: [...mux, '-o', 'ControlMaster=yes', '-o', 'ControlPersist=30', '-f', '-N'] });
    assert.equal(master.code, 0, master.stderr);
    try {
      const [first, second] = await Promise.all([
        // OpenSSH sends no env requests for multiplexed sessions: the trace comes with the command.
        ssh('agent-1:web-1', ['TRACEGATE_TRACE_ID=t-own echo first-of-two'], { sshOptions: mux }),
        ssh('agent-1:web-1', ["TRACEGATE_TRACE_ID='t-own-2' echo second-of-two"], { sshOptions: mux }),
      ]);
      assert.equal(first.stdout, 'first-of-two\n', first.stderr);
      assert.equal(second.stdout, 'second-of-two\n', second.stderr);
      assert.equal(statementFor('echo first-of-two')?.traceId, 't-own', 'the prefix is taken off the recorded command');
      assert.equal(statementFor('echo second-of-two')?.traceId, 't-own-2');
      const session = (text: string) => recorder.statements.find((s) => s.text === text);
      assert.ok(session('echo first-of-two') && session('echo second-of-two'));
    } finally {
      await runProgram('ssh', [...mux, '-O', 'exit', '-p', String(port), '127.0.0.1']);
    }
  });

  it('answers bad logins in SSH\'s own terms and stays up for everyone else', async () => {
    const wrongKey = await ssh('agent-1:web-1', ['true'], { key: 'tg_wrong' });
    assert.equal(wrongKey.code, 255);
    assert.match(wrongKey.stderr, /Permission denied/);
    const noTarget = await ssh('agent-1', ['true']);
    assert.equal(noTarget.code, 255);
    assert.match(noTarget.stderr, /log in as <key name>:<target>/);
    const unknown = await ssh('agent-1:nowhere', ['true']);
    assert.equal(unknown.code, 255);
    assert.match(unknown.stderr, /target 'nowhere' is not registered with tracegate/);
    const impostor = await ssh('agent-1:impostor', ['true']);
    assert.equal(impostor.code, 255);
    assert.match(impostor.stderr, /presented a host key other than the one registered/);
    const forward = await ssh('agent-1:web-1', ['-W', '127.0.0.1:22']);
    assert.notEqual(forward.code, 0);
    assert.match(forward.stderr, /administratively prohibited/);
    const still = await ssh('agent-1:web-1', ['echo still up']);
    assert.equal(still.stdout, 'still up\n');
  });

  it('logs in with a registered public key, no password', async () => {
    const publicKey = readFileSync(`${sshd.clientKeyPath}.pub`, 'utf8').trim().split(' ').slice(0, 2).join(' ');
    const refused = await ssh('agent-1:web-1', ['echo by-key'], { sshOptions: ['-o', 'PubkeyAuthentication=yes', '-o', 'PreferredAuthentications=publickey', '-o', 'IdentitiesOnly=yes', '-i', sshd.clientKeyPath] });
    assert.equal(refused.code, 255, 'an unregistered key is refused');
    registeredKeys.set(publicKey, AGENT.name);
    const result = await ssh('agent-1:web-1', ['echo by-key'], { sshOptions: ['-o', 'PubkeyAuthentication=yes', '-o', 'PreferredAuthentications=publickey', '-o', 'IdentitiesOnly=yes', '-i', sshd.clientKeyPath] });
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, 'by-key\n');
  });

  it('stops a command whose output is binary rather than pass bytes masking cannot read', async () => {
    const result = await ssh('agent-1:web-1', ['head -c 4096 /dev/urandom; sleep 1; echo after']);
    assert.equal(result.code, 126);
    assert.match(result.stderr, /binary output, which masking profile 'default' cannot read/);
    assert.doesNotMatch(result.stdout, /after/);
  });

  it('drops a client that speaks no SSH, and serves the next one', async () => {
    const answer = await new Promise<string>((resolve) => {
      let received = '';
      const socket = net.connect(port, '127.0.0.1', () => socket.write('GET / HTTP/1.1\r\nHost: gateway\r\n\r\n'));
      socket.on('data', (data) => (received += data.toString('latin1')));
      socket.on('close', () => resolve(received));
      socket.on('error', () => undefined);
    });
    assert.match(answer, /^SSH-2\.0-tracegate/, 'the gateway said who it is before giving up on the client');
    const next = await ssh('agent-1:web-1', ['echo next']);
    assert.equal(next.stdout, 'next\n');
  });

  it('runs an interactive shell with a terminal, decided as a shell reading commands', async () => {
    const result = await ssh('agent-1:web-1', [], { sshOptions: ['-tt'], input: 'echo inter$((6*7))active\nexit 0\n' });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /inter42active/);
    assert.ok(judge.seen.some((s) => s.protocol === 'ssh-shell' && s.text === 'sh -i'));
  });

  // Last: it closes the listener.
  it('tells connected clients why when the gateway shuts down, and records the end', async () => {
    const running = ssh('agent-1:web-1', ['echo started; sleep 20']);
    await pollUntil(() => recorder.statements.some((s) => s.text === 'echo started; sleep 20'), { timeoutMs: 10_000, description: 'the command running' });
    await new Promise((r) => setTimeout(r, 300));
    await listener.close(2000);
    const result = await running;
    assert.equal(result.code, 255);
    assert.match(result.stderr, /the tracegate gateway is shutting down/);
    await pollUntil(() => [...recorder.ended.values()].some((reason) => /shutting down/.test(reason)), { timeoutMs: 5000, description: 'the session end recorded' });
  });
});
