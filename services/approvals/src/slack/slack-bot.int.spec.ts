import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { approvalsV1, SERVICE_PROTOS } from '@tracegate/contracts';
import { grpcClient, INTERNAL_TOKEN_METADATA, startServices, type PromiseClient, type RunningProcess } from '@tracegate/runtime';
import { expectEventually, freePort, pollUntil, startPostgres, type PostgresServer } from '@tracegate/test-harness';
import { approvalsService } from '../approvals.definition.js';
import { startBrokerProcess, type BrokerProcess } from '../testing/broker-process.testing.js';
import { buttonPress, modalSubmission, signedInteraction, SlackWebApi, type SlackCall, type SlackUser } from '../testing/slack-web-api.testing.js';
import { APPROVE_ACTION, DENY_ACTION, DENY_MODAL } from './approval-message.js';

const { ApprovalState } = approvalsV1;
const TOKEN = randomBytes(32).toString('base64url');
const BOT_TOKEN = `xoxb-${randomBytes(12).toString('hex')}`;
const SIGNING_SECRET = randomBytes(16).toString('hex');

// alice is mapped in TRACEGATE_SLACK_USERS; bob by his Slack email (his identity is named after it);
// erin's Slack email names no identity; dave is mapped and asks for changes himself.
const alice: SlackUser = { id: 'U0ALICE', name: 'alice' };
const bob: SlackUser = { id: 'U0BOB', name: 'bob', email: 'bob@example.com' };
const erin: SlackUser = { id: 'U0ERIN', name: 'erin', email: 'erin@example.com' };
const dave: SlackUser = { id: 'U0DAVE', name: 'dave' };

describe('the Slack bot against a local Slack Web API, with signed interactions', () => {
  let postgres: PostgresServer;
  let broker: BrokerProcess;
  let slack: SlackWebApi;
  let proc: RunningProcess;
  let databaseUrl: string;
  let environment: Record<string, string>;
  const start = async () => {
    proc = await startServices([approvalsService], { component: 'tracegate approvals slack test', databaseUrl, env: environment });
  };
  let gateway: PromiseClient<approvalsV1.ApprovalServiceClient>;
  let interactionsUrl: string;
  const ids: Record<string, string> = {};

  const hold = async (requester: string, overrides: Partial<approvalsV1.RequestRequest> = {}) => {
    const { request } = await gateway.request({
      requesterId: ids[requester]!,
      requesterName: requester,
      target: 'billing',
      maskedCommand: 'DELETE FROM invoices WHERE customer_id = $1',
      traceId: 'trace-1234',
      rule: 'agents-writes-need-review',
      reviewerGroup: 'dba',
      quorum: 1,
      timeoutSeconds: 600,
      sessionId: 'session-5',
      ...overrides,
    });
    return request!.id;
  };
  /** The message the bot posted about a request. */
  const postedAbout = (id: string) =>
    pollUntil(() => slack.callsOf('chat.postMessage').find((c) => JSON.stringify(c.args.blocks).includes(id)), { description: `the Slack message about ${id}` });
  /** The posted message as a button press refers to it: its channel and the ts Slack gave it. */
  const posted = async (id: string) => {
    const call: SlackCall = await postedAbout(id);
    return { call, message: { channel: call.answer.channel as string, ts: call.answer.ts as string, blocks: call.args.blocks } };
  };
  const send = (payload: unknown, signed = signedInteraction(SIGNING_SECRET, payload)) =>
    fetch(interactionsUrl, { method: 'POST', headers: signed.headers, body: signed.body });
  const state = async (id: string) => (await gateway.get({ id })).request!;

  before(async () => {
    postgres = await startPostgres();
    broker = await startBrokerProcess(await postgres.createDatabase(), TOKEN, { grpc: await freePort(), metrics: await freePort() });
    for (const [name, kind] of [['alice', 'human'], ['bob@example.com', 'human'], ['dave', 'human'], ['ci-agent', 'agent']] as const) {
      ids[name] = (await broker.createKey(name, kind, ['dba'])).id;
    }
    slack = new SlackWebApi(BOT_TOKEN, [alice, bob, erin, dave]);
    await slack.start();
    const grpcPort = await freePort();
    const slackPort = await freePort();
    interactionsUrl = `http://127.0.0.1:${slackPort}/slack/events`;
    databaseUrl = await postgres.createDatabase();
    environment = {
        TRACEGATE_APPROVALS_GRPC_PORT: String(grpcPort),
        TRACEGATE_APPROVALS_METRICS_PORT: String(await freePort()),
        TRACEGATE_BROKER_ADDRESS: broker.address,
        TRACEGATE_INTERNAL_TOKEN: TOKEN,
        TRACEGATE_LOG_LEVEL: 'silent',
        TRACEGATE_SLACK_BOT_TOKEN: BOT_TOKEN,
        TRACEGATE_SLACK_SIGNING_SECRET: SIGNING_SECRET,
        TRACEGATE_SLACK_PORT: String(slackPort),
        TRACEGATE_SLACK_API_URL: slack.url,
        TRACEGATE_SLACK_CHANNELS: 'dba=C0DBA,*=C0REVIEWS',
        TRACEGATE_SLACK_USERS: 'U0ALICE=alice,U0DAVE=dave',
    };
    await start();
    gateway = grpcClient(SERVICE_PROTOS.approvals.files[0], 'tracegate.approvals.v1.ApprovalService', `127.0.0.1:${grpcPort}`, { metadata: { [INTERNAL_TOKEN_METADATA]: TOKEN } });
  });

  after(async () => {
    gateway?.close();
    await proc?.stop();
    await slack?.stop();
    await broker?.stop();
    await postgres?.stop();
  });

  it("posts a Block Kit message to the reviewer group's channel with the command, target, identity, trace and Approve/Deny buttons", async () => {
    const id = await hold('ci-agent');
    const { call } = await posted(id);
    assert.equal(call.args.channel, 'C0DBA');
    assert.match(call.args.text as string, /^Approval needed: ci-agent on billing: DELETE FROM invoices/);
    const blocks = call.args.blocks as { type: string; text?: { text: string }; fields?: { text: string }[]; elements?: { action_id?: string; value?: string }[] }[];
    assert.deepEqual(blocks.map((b) => b.type), ['header', 'section', 'section', 'context', 'section', 'actions']);
    assert.equal(blocks[0]!.text!.text, 'Approval needed: billing');
    assert.match(blocks[1]!.text!.text, /\*ci-agent\* wants to run on \*billing\*:\n```DELETE FROM invoices WHERE customer_id = \$1```/);
    const fields = blocks[2]!.fields!.map((f) => f.text).join('\n');
    assert.match(fields, /\*Identity\*\nci-agent \(`[0-9a-f]{32}`\)/);
    assert.match(fields, /\*Reasoning trace\*\n`trace-1234`/);
    assert.match(fields, /\*Policy rule\*\nagents-writes-need-review/);
    assert.match(fields, /\*Reviewers\*\ndba, 1 approval needed/);
    assert.deepEqual(blocks[5]!.elements!.map((e) => [e.action_id, e.value]), [[APPROVE_ACTION, id], [DENY_ACTION, id]]);

    const other = await hold('ci-agent', { reviewerGroup: 'sre' });
    assert.equal((await postedAbout(other)).args.channel, 'C0REVIEWS', 'a group without its own channel goes to the * channel');
  });

  it('approves through Slack as the mapped reviewer and updates the message with the outcome', async () => {
    const id = await hold('ci-agent');
    const { message } = await posted(id);
    const response = await send(buttonPress(alice, message, APPROVE_ACTION, id));
    assert.equal(response.status, 200);
    await expectEventually(async () => assert.equal((await state(id)).state, ApprovalState.APPROVAL_STATE_APPROVED));
    assert.deepEqual((await state(id)).approvers, ['alice']);
    const update = await pollUntil(() => slack.callsOf('chat.update').find((c) => JSON.stringify(c.args.blocks).includes(id)), { description: 'chat.update' });
    assert.equal(update.args.channel, 'C0DBA');
    const blocks = update.args.blocks as { type: string; text?: { text: string } }[];
    assert.ok(!blocks.some((b) => b.type === 'actions'), 'a decided request has no buttons');
    assert.ok(blocks.some((b) => b.text?.text === ':white_check_mark: *Approved* by alice; the command runs'), JSON.stringify(blocks));
  });

  it('Deny opens a modal asking for the reason; an empty reason keeps the modal open, a reason denies the request (the reviewer mapped by email)', async () => {
    const id = await hold('ci-agent');
    const { message } = await posted(id);
    assert.equal((await send(buttonPress(bob, message, DENY_ACTION, id))).status, 200);
    const opened = await pollUntil(() => slack.callsOf('views.open').find((c) => (c.args.view as { private_metadata?: string }).private_metadata === id), { description: 'views.open' });
    const view = opened.args.view as Record<string, unknown>;
    assert.equal(view.callback_id, DENY_MODAL);
    assert.match(opened.args.trigger_id as string, /^\d+\.1234567890\./);
    assert.ok(slack.callsOf('users.info').some((c) => c.args.user === 'U0BOB'), 'bob is looked up by his Slack email');

    const empty = await send(modalSubmission(bob, { id: 'V01', ...view }, { reason: { reason_input: { type: 'plain_text_input', value: '  ' } } }));
    assert.equal(empty.status, 200);
    const errors = (await empty.json()) as { response_action: string; errors: Record<string, string> };
    assert.equal(errors.response_action, 'errors');
    assert.match(errors.errors.reason!, /^reason is required to deny request/);
    assert.equal((await state(id)).state, ApprovalState.APPROVAL_STATE_PENDING);

    const denied = await send(modalSubmission(bob, { id: 'V01', ...view }, { reason: { reason_input: { type: 'plain_text_input', value: 'not during the month-end close' } } }));
    assert.equal(denied.status, 200);
    assert.equal(await denied.text(), '', 'an accepted submission closes the modal');
    const after = await state(id);
    assert.equal(after.state, ApprovalState.APPROVAL_STATE_DENIED);
    assert.equal(after.reason, 'not during the month-end close');
    assert.equal(after.decidedBy, 'bob@example.com');
    await expectEventually(() =>
      assert.ok(slack.callsOf('chat.update').some((c) => JSON.stringify(c.args.blocks).includes(':no_entry: *Denied* by bob@example.com: not during the month-end close'))),
    );
  });

  it('refuses a forged signature, a stale timestamp and a replayed request with 401, deciding nothing', async () => {
    const id = await hold('ci-agent');
    const { message } = await posted(id);
    const payload = buttonPress(alice, message, APPROVE_ACTION, id);
    const forged = signedInteraction(`${SIGNING_SECRET}x`, payload);
    assert.equal((await send(payload, forged)).status, 401);
    const stale = signedInteraction(SIGNING_SECRET, payload, Math.floor(Date.now() / 1000) - 6 * 60);
    assert.equal((await send(payload, stale)).status, 401);
    const unsigned = await fetch(interactionsUrl, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: forged.body });
    assert.equal(unsigned.status, 401);
    assert.equal((await state(id)).state, ApprovalState.APPROVAL_STATE_PENDING);

    // A genuine press, captured and sent again within the window, must not count a second time.
    const quorumTwo = await hold('ci-agent', { quorum: 2 });
    const { message: second } = await posted(quorumTwo);
    const once = signedInteraction(SIGNING_SECRET, buttonPress(alice, second, APPROVE_ACTION, quorumTwo));
    assert.equal((await send(null, once)).status, 200);
    await expectEventually(async () => assert.deepEqual((await state(quorumTwo)).approvers, ['alice']));
    assert.equal((await send(null, once)).status, 401);
  });

  it('tells an unmapped Slack user, and the requester approving their own request, why not — in an ephemeral message', async () => {
    const id = await hold('dave');
    const { message } = await posted(id);
    assert.equal((await send(buttonPress(erin, message, APPROVE_ACTION, id))).status, 200);
    const toErin = await pollUntil(() => slack.callsOf('chat.postEphemeral').find((c) => c.args.user === 'U0ERIN'), { description: 'an ephemeral message to erin' });
    assert.equal(toErin.args.channel, 'C0DBA');
    assert.match(toErin.args.text as string, /^your Slack account \(U0ERIN\) is not a tracegate reviewer: ask an operator to map it/);

    assert.equal((await send(buttonPress(dave, message, APPROVE_ACTION, id))).status, 200);
    const toDave = await pollUntil(() => slack.callsOf('chat.postEphemeral').find((c) => c.args.user === 'U0DAVE'), { description: 'an ephemeral message to dave' });
    assert.equal(toDave.args.text, "you requested this change; another member of 'dba' must approve it");
    assert.equal((await state(id)).state, ApprovalState.APPROVAL_STATE_PENDING);
    assert.ok(!JSON.stringify(slack.calls).includes(SIGNING_SECRET), 'the signing secret never reaches Slack');
  });

  it('posts after a restart a request it could not post before, and never posts a request twice', async () => {
    slack.refusePostsTo.add('C0DBA');
    const missed = await hold('ci-agent', { maskedCommand: 'UPDATE invoices SET amount = 3 WHERE id = 3' });
    await pollUntil(() => slack.callsOf('chat.postMessage').find((c) => JSON.stringify(c.args.blocks).includes(missed) && c.answer.ok === false), { description: 'the refused post' });
    slack.refusePostsTo.clear();
    await proc.stop();
    await start();
    await pollUntil(() => slack.callsOf('chat.postMessage').find((c) => JSON.stringify(c.args.blocks).includes(missed) && c.answer.ok === true), { description: 'the request posted at start' });
    const postedIds = slack
      .callsOf('chat.postMessage')
      .filter((c) => c.answer.ok === true)
      .map((c) => (c.args.blocks as { type: string; elements?: { value: string }[] }[]).find((b) => b.type === 'actions')?.elements?.[0]?.value);
    assert.equal(new Set(postedIds).size, postedIds.length, `each request is posted once: ${postedIds.join(', ')}`);
  });
});
