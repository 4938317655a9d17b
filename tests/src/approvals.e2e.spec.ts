import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { buttonPress, modalSubmission, signedInteraction, SlackWebApi, type SlackCall, type SlackUser } from '@tracegate/approvals/testing/slack-web-api.testing';
import { expectEventually, freePorts, pollUntil, startPostgres } from '@tracegate/test-harness';
import { isolatedEnvironment, runTracegate, TracegateProcess } from './support/tracegate-process.js';

const APPROVALS_MAIN = fileURLToPath(new URL('../../services/approvals/dist/main.js', import.meta.url));
const BOT_TOKEN = `xoxb-${randomBytes(12).toString('hex')}`;
const SIGNING_SECRET = randomBytes(16).toString('hex');
const alice: SlackUser = { id: 'U0ALICE', name: 'alice' };
const bob: SlackUser = { id: 'U0BOB', name: 'bob' };

// Agents read freely; their updates wait for one dba, their deletes for two.
const POLICY = `version: 1
default: { agent: deny, human: allow, service: deny }
rules:
  - name: agents-read
    priority: 100
    match: { identity: { kind: [agent] }, statement: { kind: [select] } }
    effect: allow
  - name: agent-updates-need-a-dba
    priority: 300
    match: { identity: { kind: [agent] }, statement: { kind: [update] } }
    effect: review
    review: { group: dba, quorum: 1, timeout_seconds: 300 }
  - name: agent-deletes-need-two-dbas
    priority: 400
    match: { identity: { kind: [agent] }, statement: { kind: [delete] } }
    effect: review
    review: { group: dba, quorum: 2, timeout_seconds: 300 }
`;

interface PsqlRun {
  readonly done: Promise<{ code: number | null; stdout: string; stderr: string }>;
  settled(): boolean;
  stderr(): string;
}

/**
 * A held statement end to end: psql as an agent through the gateway, the approvals service as its
 * own process (so it can be restarted while a statement waits), its Slack bot talking to a local
 * Slack Web API, reviewers answering in Slack (signed interactions) and with the CLI.
 */
describe('approvals end to end: psql held, decided in Slack and the CLI', () => {
  let postgres: Awaited<ReturnType<typeof startPostgres>>;
  let target: pg.Client;
  let home: string;
  let environment: Record<string, string>;
  let approvalsEnvironment: Record<string, string>;
  let tracegate: TracegateProcess | undefined;
  let approvals: ChildProcess | undefined;
  let approvalsLog = '';
  let slack: SlackWebApi;
  let interactionsUrl: string;
  const keys: Record<string, string> = {};

  const psql = (sql: string): PsqlRun => {
    const child = spawn('psql', ['-X', '-At', '-v', 'ON_ERROR_STOP=1', `postgresql://ci-agent:${keys['ci-agent']}@127.0.0.1:${environment.TRACEGATE_GATEWAY_POSTGRES_PORT}/billing?sslmode=require`, '-c', sql], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let settled = false;
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const done = once(child, 'exit').then(([code]) => {
      settled = true;
      return { code: code as number | null, stdout, stderr };
    });
    return { done, settled: () => settled, stderr: () => stderr };
  };
  const amountOf = async (id: number) => (await target.query<{ amount: string }>('SELECT amount FROM invoices WHERE id = $1', [id])).rows[0]?.amount;
  /** The Slack message about the held statement, and the request id its buttons carry. */
  const slackMessageAbout = async (text: string) => {
    const call: SlackCall = await pollUntil(() => slack.callsOf('chat.postMessage').find((c) => JSON.stringify(c.args.blocks).includes(text)), {
      timeoutMs: 60_000,
      description: `a Slack message about ${text}`,
    });
    const actions = (call.args.blocks as { type: string; elements?: { value: string }[] }[]).find((b) => b.type === 'actions');
    return { requestId: actions!.elements![0]!.value, message: { channel: call.answer.channel as string, ts: call.answer.ts as string, blocks: call.args.blocks } };
  };
  const press = (payload: unknown, signed = signedInteraction(SIGNING_SECRET, payload)) => fetch(interactionsUrl, { method: 'POST', headers: signed.headers, body: signed.body });
  const cliAs = (reviewer: string, args: string[]) => runTracegate(['approvals', ...args], { ...environment, TRACEGATE_API_KEY: keys[reviewer]! });

  const startApprovals = async () => {
    approvalsLog = '';
    approvals = spawn(process.execPath, [APPROVALS_MAIN], { env: { PATH: process.env.PATH ?? '', ...approvalsEnvironment }, stdio: ['ignore', 'pipe', 'pipe'] });
    approvals.stdout!.on('data', (d: Buffer) => (approvalsLog += d.toString()));
    approvals.stderr!.on('data', (d: Buffer) => (approvalsLog += d.toString()));
    await pollUntil(
      async () => {
        if (approvals!.exitCode !== null) throw new Error(`the approvals service exited:\n${approvalsLog}`);
        return (await runTracegate(['approvals', 'list'], environment)).code === 0;
      },
      { timeoutMs: 60_000, intervalMs: 250, description: 'the approvals service to serve' },
    );
  };
  const stopApprovals = async () => {
    if (!approvals || approvals.exitCode !== null) return;
    const exited = once(approvals, 'exit');
    approvals.kill('SIGTERM');
    await exited;
  };

  before(async () => {
    postgres = await startPostgres();
    const targetUrl = new URL(await postgres.createDatabase('billing'));
    target = new pg.Client({ connectionString: targetUrl.toString() });
    await target.connect();
    await target.query('CREATE TABLE invoices (id int PRIMARY KEY, amount numeric)');
    await target.query('INSERT INTO invoices VALUES (1, 10), (2, 20), (3, 30)');

    slack = new SlackWebApi(BOT_TOKEN, [alice, bob]);
    await slack.start();
    home = mkdtempSync(path.join(tmpdir(), 'tracegate-e2e-approvals-'));
    const policyFile = path.join(home, 'policy.yaml');
    writeFileSync(policyFile, POLICY);
    const [approvalsGrpc, approvalsMetrics, slackPort] = (await freePorts(3)).map(String);
    interactionsUrl = `http://127.0.0.1:${slackPort}/slack/events`;
    environment = {
      ...(await isolatedEnvironment(home)),
      DATABASE_URL: await postgres.createDatabase('tracegate'),
      TRACEGATE_POLICY_FILE: policyFile,
      // The gateway and the CLI use the approvals service that runs on its own.
      TRACEGATE_APPROVALS_ADDRESS: `127.0.0.1:${approvalsGrpc}`,
    };
    tracegate = await TracegateProcess.startHealthy(environment, { ...environment, TRACEGATE_APPROVALS_ADDRESS: `127.0.0.1:${environment.TRACEGATE_APPROVALS_GRPC_PORT}` });
    approvalsEnvironment = {
      ...environment,
      TRACEGATE_INTERNAL_TOKEN: readFileSync(path.join(home, 'internal-token'), 'utf8').trim(),
      TRACEGATE_APPROVALS_GRPC_PORT: approvalsGrpc!,
      TRACEGATE_APPROVALS_METRICS_PORT: approvalsMetrics!,
      TRACEGATE_LOG_LEVEL: 'warn',
      TRACEGATE_SLACK_BOT_TOKEN: BOT_TOKEN,
      TRACEGATE_SLACK_SIGNING_SECRET: SIGNING_SECRET,
      TRACEGATE_SLACK_PORT: slackPort!,
      TRACEGATE_SLACK_API_URL: slack.url,
      TRACEGATE_SLACK_CHANNELS: 'dba=C0DBA',
      TRACEGATE_SLACK_USERS: 'U0ALICE=alice,U0BOB=bob',
    };
    await startApprovals();

    const added = await runTracegate(
      ['target', 'add', 'billing', '--type', 'postgres', '--host', targetUrl.hostname, '--port', targetUrl.port, '--database', 'billing', '--user', decodeURIComponent(targetUrl.username), '--password-env', 'BILLING_PASSWORD', '--tls', 'disable'],
      { ...environment, BILLING_PASSWORD: decodeURIComponent(targetUrl.password) },
    );
    assert.equal(added.code, 0, added.stderr);
    for (const [name, kind, group] of [['ci-agent', 'agent', 'bots'], ['alice', 'human', 'dba'], ['bob', 'human', 'dba']]) {
      const created = await runTracegate(['key', 'create', '--name', name!, '--kind', kind!, '--group', group!], environment);
      assert.equal(created.code, 0, created.stderr);
      keys[name!] = /(tg_[A-Za-z0-9_-]+)/.exec(created.stdout)![1]!;
    }
  });

  after(async () => {
    await stopApprovals();
    await tracegate?.terminate('SIGTERM');
    await target?.end();
    await slack?.stop();
    await postgres?.stop();
    if (home) rmSync(home, { recursive: true, force: true });
  });

  it('holds an agent’s UPDATE, refuses a forged Slack signature, and runs the statement with its rows once approved in Slack', async () => {
    const held = psql('UPDATE invoices SET amount = 11 WHERE id = 1 RETURNING amount');
    const { requestId, message } = await slackMessageAbout('UPDATE invoices SET amount = 11');
    await expectEventually(() => assert.match(held.stderr(), new RegExp(`NOTICE: +tracegate: this statement is held for approval \\(request ${requestId}\\)`)));
    const forged = signedInteraction(`${SIGNING_SECRET}0`, buttonPress(alice, message, 'tracegate_approve', requestId));
    assert.equal((await press(null, forged)).status, 401);
    assert.equal(held.settled(), false, 'a forged approval does not release the statement');
    assert.equal(await amountOf(1), '10');

    assert.equal((await press(buttonPress(alice, message, 'tracegate_approve', requestId))).status, 200);
    const result = await held.done;
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, '11\nUPDATE 1\n');
    await expectEventually(() => assert.ok(slack.callsOf('chat.update').some((c) => JSON.stringify(c.args.blocks).includes('*Approved* by alice'))));
  });

  it('refuses the statement with the reviewer’s reason when denied through the Slack modal', async () => {
    const held = psql('UPDATE invoices SET amount = 0 WHERE id = 2');
    const { requestId, message } = await slackMessageAbout('UPDATE invoices SET amount = 0');
    assert.equal((await press(buttonPress(bob, message, 'tracegate_deny', requestId))).status, 200);
    const opened = await pollUntil(() => slack.callsOf('views.open').find((c) => (c.args.view as { private_metadata: string }).private_metadata === requestId), { description: 'the Deny modal' });
    const submitted = await press(modalSubmission(bob, opened.answer.view as Record<string, unknown>, { reason: { reason_input: { type: 'plain_text_input', value: 'zeroing an invoice needs a ticket' } } }));
    assert.equal(submitted.status, 200);
    const result = await held.done;
    assert.notEqual(result.code, 0);
    assert.match(result.stderr, new RegExp(`ERROR: +approval request ${requestId} was denied: zeroing an invoice needs a ticket`));
    assert.equal(await amountOf(2), '20', 'the denied statement never reached the target');
  });

  it('needs two reviewers for a quorum of two: one approval in the CLI keeps it held, a second in Slack runs it', async () => {
    const held = psql('DELETE FROM invoices WHERE id = 3');
    const { requestId, message } = await slackMessageAbout('DELETE FROM invoices WHERE id = 3');
    const first = await cliAs('alice', ['approve', requestId]);
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /needs 1 more approval from 'dba'/);
    const again = await cliAs('alice', ['approve', requestId]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /you already approved request/);
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(held.settled(), false, 'one approval of two does not release the statement');
    assert.equal(await amountOf(3), '30');

    assert.equal((await press(buttonPress(bob, message, 'tracegate_approve', requestId))).status, 200);
    const result = await held.done;
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, 'DELETE 1\n');
    assert.equal(await amountOf(3), undefined);
  });

  it('keeps the statement held while the approvals service restarts, and runs it once approved afterwards', async () => {
    const held = psql('UPDATE invoices SET amount = 12 WHERE id = 1 RETURNING amount');
    const { requestId } = await slackMessageAbout('UPDATE invoices SET amount = 12');
    await stopApprovals();
    await new Promise((resolve) => setTimeout(resolve, 500));
    assert.equal(held.settled(), false, 'the held statement waits while the approvals service is down');
    await startApprovals();

    const shown = await runTracegate(['approvals', 'show', requestId], environment);
    assert.match(shown.stdout, /state +pending/);
    const approved = await cliAs('bob', ['approve', requestId]);
    assert.equal(approved.code, 0, approved.stderr);
    const result = await held.done;
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, '12\nUPDATE 1\n');
    // The restarted bot updates the message it posted before the restart.
    await expectEventually(() => assert.ok(slack.callsOf('chat.update').some((c) => JSON.stringify(c.args.blocks).includes(requestId) && JSON.stringify(c.args.blocks).includes('*Approved* by bob'))));
  });
});
