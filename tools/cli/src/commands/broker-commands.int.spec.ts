import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { runCli } from '../testing/run-cli.js';
import { brokerService } from '@tracegate/broker';
import { startServices, type RunningProcess } from '@tracegate/runtime';
import { freePort, startPostgres, startSshd, type PostgresServer, type SshdServer } from '@tracegate/test-harness';

const TOKEN = randomBytes(32).toString('base64url');
const PASSWORD = `pw-${randomBytes(12).toString('hex')}`;

const tracegate = runCli;
const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

describe('tracegate target / key against a running broker', () => {
  let postgres: PostgresServer;
  let proc: RunningProcess;
  let home: string;
  let cli: Record<string, string>;

  before(async () => {
    postgres = await startPostgres();
    const grpcPort = String(await freePort());
    proc = await startServices([brokerService], {
      component: 'tracegate cli test',
      databaseUrl: await postgres.createDatabase(),
      env: {
        TRACEGATE_BROKER_GRPC_PORT: grpcPort,
        TRACEGATE_BROKER_METRICS_PORT: String(await freePort()),
        TRACEGATE_BROKER_KEYS: `k1:${randomBytes(32).toString('base64')}`,
        TRACEGATE_INTERNAL_TOKEN: TOKEN,
        TRACEGATE_LOG_LEVEL: 'silent',
      },
    });
    home = await mkdtemp(path.join(tmpdir(), 'tracegate-cli-'));
    cli = { TRACEGATE_BROKER_GRPC_PORT: grpcPort, TRACEGATE_INTERNAL_TOKEN: TOKEN, TRACEGATE_HOME: home };
  });

  after(async () => {
    await proc?.stop();
    await postgres?.stop();
    if (home) await rm(home, { recursive: true, force: true });
  });

  it('adds a target with the password from the named environment variable, lists it without the secret, and removes it', async () => {
    const add = await tracegate(
      ['target', 'add', 'billing', '--type', 'postgres', '--host', 'db.internal', '--port', '6432', '--database', 'billing', '--user', 'billing_rw', '--password-env', 'BILLING_PW', '--tls', 'verify-full', '--label', 'env=prod', '--label', 'team=payments'],
      { ...cli, BILLING_PW: PASSWORD },
    );
    assert.equal(add.code, 0, add.stderr);
    assert.match(add.stdout, /registered target 'billing' \(postgres billing_rw@db\.internal:6432\/billing, tls verify-full\); its password is encrypted and will not be shown again/);

    const list = await tracegate(['target', 'list'], cli);
    assert.equal(list.code, 0, list.stderr);
    const [header, row, ...rest] = list.stdout.trimEnd().split('\n');
    assert.match(header!, /^NAME\s+TYPE\s+HOST\s+PORT\s+DATABASE\s+USER\s+TLS\s+HOST KEY\s+LABELS\s+CREATED$/);
    assert.match(row!, /^billing\s+postgres\s+db\.internal\s+6432\s+billing\s+billing_rw\s+verify-full\s+env=prod,team=payments\s+\d{4}-\d\d-\d\dT/);
    assert.deepEqual(rest, []);
    assert.ok(!list.stdout.includes(PASSWORD) && !add.stdout.includes(PASSWORD));

    const duplicate = await tracegate(['target', 'add', 'billing', '--host', 'h', '--database', 'd', '--user', 'u', '--password-env', 'BILLING_PW'], { ...cli, BILLING_PW: PASSWORD });
    assert.equal(duplicate.code, 1);
    assert.equal(duplicate.stderr, "tracegate: target 'billing' is already registered; remove it first with `tracegate target remove billing` to replace it\n");

    assert.equal((await tracegate(['target', 'remove', 'billing'], cli)).code, 0);
    const again = await tracegate(['target', 'remove', 'billing'], cli);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /^tracegate: target 'billing' is not registered; run `tracegate target add billing …`/);
  });

  it('adds an ssh target with a real sshd\'s host key (a known_hosts line, or @file) and private key file, and lists its fingerprint as ssh-keygen prints it', async () => {
    const sshd: SshdServer = await startSshd();
    try {
      const sshArgs = (name: string, hostKey: string) => ['target', 'add', name, '--type', 'ssh', '--host', sshd.host, '--port', String(sshd.port), '--user', sshd.user, '--host-key', hostKey, '--secret-file', sshd.clientKeyPath];
      const add = await tracegate(sshArgs('db1-shell', sshd.knownHostsLine), cli);
      assert.equal(add.code, 0, add.stderr);
      assert.equal(
        add.stdout,
        `registered target 'db1-shell' (ssh ${sshd.user}@127.0.0.1:${sshd.port}, host key ${sshd.hostKeyFingerprint} (ED25519)); its private key is encrypted and will not be shown again\n`,
      );

      const keyFile = path.join(home, 'ssh_host_ed25519_key.pub');
      await writeFile(keyFile, `# from ssh-keyscan\n${sshd.knownHostsLine.split(' ').slice(1).join(' ')} root@db1\n`);
      const fromFile = await tracegate(sshArgs('db1-by-file', `@${keyFile}`), cli);
      assert.equal(fromFile.code, 0, fromFile.stderr);

      const list = await tracegate(['target', 'list'], cli);
      assert.equal(list.code, 0, list.stderr);
      const fingerprint = sshd.hostKeyFingerprint.replace(/[+/]/g, (c) => `\\${c}`);
      for (const name of ['db1-by-file', 'db1-shell']) {
        assert.match(list.stdout, new RegExp(`^${name}\\s+ssh\\s+127\\.0\\.0\\.1\\s+${sshd.port}\\s+${sshd.user}\\s+${fingerprint} \\(ED25519\\)\\s+\\d{4}-`, 'm'));
      }
      const privateKeyBody = (await readFile(sshd.clientKeyPath, 'utf8')).split('\n')[1]!;
      assert.ok(!list.stdout.includes(privateKeyBody) && !add.stdout.includes(privateKeyBody));

      const twoKeys = path.join(home, 'keyscan.txt');
      await writeFile(twoKeys, `${sshd.knownHostsLine}\n${sshd.knownHostsLine}\n`);
      const mistakes: [string[], number, RegExp][] = [
        [sshArgs('x', `@${twoKeys}`), 2, /--host-key holds 2 key lines; give exactly one/],
        [sshArgs('x', `@${path.join(home, 'missing.pub')}`), 2, /--host-key @.*missing\.pub: cannot read the file \(ENOENT\)/],
        [sshArgs('x', sshd.knownHostsLine.replace('ssh-ed25519', 'ssh-rsa')), 1, /^tracegate: target\.host_key is not an OpenSSH public key line: the line says ssh-rsa but the key itself is ssh-ed25519/],
        [['target', 'add', 'x', '--type', 'ssh', '--host', 'h', '--user', 'u', '--secret-file', sshd.clientKeyPath], 2, /--host-key is required for an ssh target/],
        [[...sshArgs('x', sshd.knownHostsLine), '--tls', 'require'], 2, /--tls is for postgres targets/],
        [[...sshArgs('x', sshd.knownHostsLine), '--password-env', 'PW'], 2, /give the secret with one of --password-env VAR or --secret-file F/],
      ];
      for (const [args, code, message] of mistakes) {
        const run = await tracegate(args, { ...cli, PW: PASSWORD });
        assert.equal(run.code, code, `${args.join(' ')}: ${run.stderr}`);
        assert.match(run.stderr, message);
      }
      for (const name of ['db1-shell', 'db1-by-file']) assert.equal((await tracegate(['target', 'remove', name], cli)).code, 0);
    } finally {
      await sshd.stop();
    }
  });

  it('never takes a password from the command line, and says when the named variable is unset', async () => {
    const onArgv = await tracegate(['target', 'add', 'x', '--host', 'h', '--database', 'd', '--user', 'u', '--password', PASSWORD], cli);
    assert.equal(onArgv.code, 2);
    assert.match(onArgv.stderr, /--password is not accepted: the command line is visible to other users/);

    const unset = await tracegate(['target', 'add', 'x', '--host', 'h', '--database', 'd', '--user', 'u', '--password-env', 'NOT_SET_PW'], cli);
    assert.equal(unset.code, 1);
    assert.match(unset.stderr, /the environment variable NOT_SET_PW named by --password-env is not set or empty/);
  });

  it('creates a key once, lists and revokes it', async () => {
    const created = await tracegate(['key', 'create', '--name', 'ci-agent', '--kind', 'agent', '--group', 'readers', '--group', 'ci'], cli);
    assert.equal(created.code, 0, created.stderr);
    assert.match(created.stdout, /created API key 'ci-agent' \(agent; groups: readers, ci\), id [0-9a-f]{32}:/);
    assert.match(created.stdout, /^tg_[0-9a-f]{32}_[A-Za-z0-9_-]{43}$/m);
    assert.match(created.stdout, /This key will not be shown again/);

    const list = await tracegate(['key', 'list'], cli);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /^ci-agent\s+agent\s+readers,ci\s+\S+\s+active\s+[0-9a-f]{32}$/m);
    assert.doesNotMatch(list.stdout, /tg_/);

    assert.equal((await tracegate(['key', 'revoke', 'ci-agent'], cli)).code, 0);
    assert.match((await tracegate(['key', 'list'], cli)).stdout, /^ci-agent\s+agent\s+readers,ci\s+\S+\s+revoked \S+\s+[0-9a-f]{32}$/m);

    const badKind = await tracegate(['key', 'create', '--name', 'x', '--kind', 'robot'], cli);
    assert.equal(badKind.code, 2);
    assert.match(badKind.stderr, /--kind 'robot' must be one of agent, human, service/);
  });

  it('registers an identity\'s SSH public key from a .pub file, lists its fingerprint as ssh-keygen prints it, and removes it by fingerprint or by the file', async () => {
    const sshd: SshdServer = await startSshd();
    try {
      // A real key pair made by ssh-keygen (the test sshd's authorised client key).
      const pub = path.join(home, 'id_ed25519.pub');
      await writeFile(pub, `${sshd.clientPublicKey}\n`);
      const [, expectedFingerprint] = (await promisify(execFile)('ssh-keygen', ['-l', '-f', pub])).stdout.split(' ');
      assert.equal((await tracegate(['key', 'create', '--name', 'ssh-agent', '--kind', 'agent'], cli)).code, 0);

      const add = await tracegate(['key', 'add-ssh', 'ssh-agent', `@${pub}`], cli);
      assert.equal(add.code, 0, add.stderr);
      assert.match(add.stdout, new RegExp(`^registered SSH key ${escape(expectedFingerprint!)} \\(ED25519\\) for 'ssh-agent'; it logs in with ssh -p <gateway SSH port> 'ssh-agent:<target>'@<gateway host>\\n$`));
      const again = await tracegate(['key', 'add-ssh', 'ssh-agent', sshd.clientPublicKey], cli);
      assert.equal(again.code, 1);
      assert.match(again.stderr, /^tracegate: this SSH key is already registered for 'ssh-agent'/);

      const list = await tracegate(['key', 'list'], cli);
      assert.match(list.stdout.split('\n')[0]!, /^NAME\s+KIND\s+GROUPS\s+CREATED\s+STATE\s+ID\s+SSH KEYS$/);
      assert.match(list.stdout, new RegExp(`^ssh-agent\\s+agent\\s+\\S+\\s+active\\s+[0-9a-f]{32}\\s+${escape(expectedFingerprint!)} \\(ED25519\\)$`, 'm'));

      const byFingerprint = await tracegate(['key', 'remove-ssh', 'ssh-agent', expectedFingerprint!], cli);
      assert.equal(byFingerprint.code, 0, byFingerprint.stderr);
      assert.equal(byFingerprint.stdout, `removed SSH key ${expectedFingerprint} from 'ssh-agent'; it no longer logs in\n`);
      assert.doesNotMatch((await tracegate(['key', 'list'], cli)).stdout, /SHA256:/);
      // The file's plain path does too, as in `tracegate key add-ssh ci-agent ~/.ssh/id_ed25519.pub`.
      assert.equal((await tracegate(['key', 'add-ssh', 'ssh-agent', pub], cli)).code, 0);
      assert.equal((await tracegate(['key', 'remove-ssh', 'ssh-agent', `@${pub}`], cli)).code, 0);
      const gone = await tracegate(['key', 'remove-ssh', 'ssh-agent', `@${pub}`], cli);
      assert.equal(gone.code, 1);
      assert.match(gone.stderr, /^tracegate: 'ssh-agent' has no SSH key with fingerprint SHA256:/);

      const mistakes: [string[], number, RegExp][] = [
        [['key', 'add-ssh', 'ssh-agent'], 2, /expected a key name and a public key line or @file/],
        [['key', 'add-ssh', 'ssh-agent', sshd.clientPublicKey.replace('ssh-ed25519', 'ssh-rsa')], 1, /^tracegate: public_key is not an OpenSSH public key line: the line says ssh-rsa but the key itself is ssh-ed25519/],
        [['key', 'add-ssh', 'nobody', sshd.clientPublicKey], 1, /^tracegate: no API key is named 'nobody'/],
        [['key', 'remove-ssh', 'ssh-agent', 'ssh-ed25519 AAAA'], 2, /the public key is not an OpenSSH public key/],
      ];
      for (const [args, code, message] of mistakes) {
        const run = await tracegate(args, cli);
        assert.equal(run.code, code, `${args.join(' ')}: ${run.stderr}`);
        assert.match(run.stderr, message);
      }
    } finally {
      await sshd.stop();
    }
  });

  it('reads the internal token from <TRACEGATE_HOME>/internal-token, and a wrong token is refused with a sentence', async () => {
    const withoutEnvToken = { TRACEGATE_BROKER_GRPC_PORT: cli.TRACEGATE_BROKER_GRPC_PORT!, TRACEGATE_HOME: home };
    const missing = await tracegate(['key', 'list'], withoutEnvToken);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /no internal token: TRACEGATE_INTERNAL_TOKEN is not set and .*internal-token does not exist/);

    await writeFile(path.join(home, 'internal-token'), `${TOKEN}\n`, { mode: 0o600 });
    const fromFile = await tracegate(['key', 'list'], withoutEnvToken);
    assert.equal(fromFile.code, 0, fromFile.stderr);

    const wrong = await tracegate(['target', 'list'], { ...cli, TRACEGATE_INTERNAL_TOKEN: 'w'.repeat(40) });
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /^tracegate: this call needs the broker's internal token in the gRPC metadata 'x-tracegate-internal-token'/);
  });

  it('says so when the broker cannot be reached', async () => {
    const run = await tracegate(['target', 'list'], { ...cli, TRACEGATE_BROKER_ADDRESS: `127.0.0.1:${await freePort()}` });
    assert.equal(run.code, 1);
    assert.match(run.stderr, /^tracegate: cannot reach the broker at 127\.0\.0\.1:\d+ .*is tracegate running\?/);
  });
});
