import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { approvalsV1, SERVICE_PROTOS } from '@tracegate/contracts';
import { grpcClient, INTERNAL_TOKEN_METADATA, startServices, type PromiseClient, type RunningProcess } from '@tracegate/runtime';
import { expectEventually, freePort, pollUntil, startPostgres, type PostgresServer } from '@tracegate/test-harness';
import { approvalsService } from '../approvals.definition.js';
import { startBrokerProcess, type BrokerProcess } from '../testing/broker-process.testing.js';
import { buttonPress, modalSubmission, SlackWebApi, type SlackUser } from '../testing/slack-web-api.testing.js';
import { APPROVE_ACTION, DENY_ACTION } from './approval-message.js';

const { ApprovalState } = approvalsV1;
const TOKEN = randomBytes(32).toString('base64url');
const BOT_TOKEN = `xoxb-${randomBytes(12).toString('hex')}`;
const APP_TOKEN = `xapp-1-A0APP-${randomBytes(12).toString('hex')}`;
const alice: SlackUser = { id: 'U0ALICE', name: 'alice' };

describe('the Slack bot in Socket Mode, against a local Slack (Web API and Socket Mode WebSocket)', () => {
  let postgres: PostgresServer;
  let broker: BrokerProcess;
  let slack: SlackWebApi;
  let proc: RunningProcess;
  let gateway: PromiseClient<approvalsV1.ApprovalServiceClient>;
  let requesterId: string;

  const hold = async (maskedCommand: string) => {
    const { request } = await gateway.request({
      requesterId,
      requesterName: 'ci-agent',
      target: 'billing',
      maskedCommand,
      traceId: '',
      rule: 'agents-writes-need-review',
      reviewerGroup: 'dba',
      quorum: 1,
      timeoutSeconds: 600,
      sessionId: 'session-1',
    });
    const id = request!.id;
    const call = await pollUntil(() => slack.callsOf('chat.postMessage').find((c) => JSON.stringify(c.args.blocks).includes(id)), { description: `the Slack message about ${id}` });
    return { id, message: { channel: call.answer.channel as string, ts: call.answer.ts as string, blocks: call.args.blocks } };
  };

  before(async () => {
    postgres = await startPostgres();
    broker = await startBrokerProcess(await postgres.createDatabase(), TOKEN, { grpc: await freePort(), metrics: await freePort() });
    requesterId = (await broker.createKey('ci-agent', 'agent', ['bots'])).id;
    await broker.createKey('alice', 'human', ['dba']);
    slack = new SlackWebApi(BOT_TOKEN, [alice], APP_TOKEN);
    await slack.start();
    const grpcPort = await freePort();
    proc = await startServices([approvalsService], {
      component: 'tracegate approvals socket mode test',
      databaseUrl: await postgres.createDatabase(),
      env: {
        TRACEGATE_APPROVALS_GRPC_PORT: String(grpcPort),
        TRACEGATE_APPROVALS_METRICS_PORT: String(await freePort()),
        TRACEGATE_BROKER_ADDRESS: broker.address,
        TRACEGATE_INTERNAL_TOKEN: TOKEN,
        TRACEGATE_LOG_LEVEL: 'silent',
        TRACEGATE_SLACK_BOT_TOKEN: BOT_TOKEN,
        TRACEGATE_SLACK_MODE: 'socket',
        TRACEGATE_SLACK_APP_TOKEN: APP_TOKEN,
        TRACEGATE_SLACK_API_URL: slack.url,
        TRACEGATE_SLACK_CHANNELS: '*=C0REVIEWS',
        TRACEGATE_SLACK_USERS: 'U0ALICE=alice',
      },
    });
    gateway = grpcClient(SERVICE_PROTOS.approvals.files[0], 'tracegate.approvals.v1.ApprovalService', `127.0.0.1:${grpcPort}`, { metadata: { [INTERNAL_TOKEN_METADATA]: TOKEN } });
  });

  after(async () => {
    gateway?.close();
    await proc?.stop();
    await slack?.stop();
    await broker?.stop();
    await postgres?.stop();
  });

  it('opens the connection with the app token at the configured Web API, and approves from a button press delivered over it', async () => {
    const connection = await slack.socketMode();
    assert.equal(slack.callsOf('apps.connections.open').length >= 1, true);
    const { id, message } = await hold('UPDATE invoices SET amount = 1 WHERE id = 7');
    await connection.deliver(buttonPress(alice, message, APPROVE_ACTION, id));
    await expectEventually(async () => assert.equal((await gateway.get({ id })).request!.state, ApprovalState.APPROVAL_STATE_APPROVED));
    await expectEventually(() => assert.ok(slack.callsOf('chat.update').some((c) => JSON.stringify(c.args.blocks).includes('*Approved* by alice'))));
  });

  it('answers a Deny modal submitted without a reason with the error in the acknowledgement, and denies with one', async () => {
    const connection = await slack.socketMode();
    const { id, message } = await hold('DELETE FROM invoices WHERE id = 8');
    await connection.deliver(buttonPress(alice, message, DENY_ACTION, id));
    const opened = await pollUntil(() => slack.callsOf('views.open').find((c) => (c.args.view as { private_metadata: string }).private_metadata === id), { description: 'the Deny modal' });
    const view = opened.answer.view as Record<string, unknown>;
    const refused = await connection.deliver(modalSubmission(alice, view, { reason: { reason_input: { type: 'plain_text_input', value: null } } }));
    assert.equal(refused.response_action, 'errors');
    assert.match((refused.errors as Record<string, string>).reason!, /^reason is required to deny request/);
    await connection.deliver(modalSubmission(alice, view, { reason: { reason_input: { type: 'plain_text_input', value: 'needs a change ticket' } } }));
    await expectEventually(async () => {
      const { request } = await gateway.get({ id });
      assert.equal(request!.state, ApprovalState.APPROVAL_STATE_DENIED);
      assert.equal(request!.reason, 'needs a change ticket');
    });
  });
});
