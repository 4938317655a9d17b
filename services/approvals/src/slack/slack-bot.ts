import { App, LogLevel, type BlockAction, type ButtonAction, type Logger as BoltLogger, type webApi } from '@slack/bolt';
import type { Subscription } from 'rxjs';
import type { Logger } from '@tracegate/runtime';
import type { SlackSettings } from '../approvals.config.js';
import type { Approval, Reviewer } from '../domain/approval.js';
import { ApprovalError } from '../errors.js';
import type { VersionedApproval } from '../repositories/approval.repository.js';
import type { ReviewerDirectory } from '../repositories/reviewer-directory.js';
import type { SlackMessageRepository } from '../repositories/slack-message.repository.js';
import type { ApprovalDesk } from '../services/approval-desk.js';
import type { ApprovalFeed } from '../services/approval-feed.js';
import { approvalMessage, APPROVE_ACTION, DENY_ACTION, DENY_MODAL, DENY_REASON_BLOCK, DENY_REASON_INPUT, denyModal } from './approval-message.js';
import { SignedInteractionsReceiver } from './signed-interactions-receiver.js';

type WebClient = webApi.WebClient;

/**
 * The Slack bot: asks each reviewer group's channel about new requests (Block Kit, Approve and
 * Deny buttons), turns button presses and the Deny modal into verdicts by the tracegate identity
 * the Slack user maps to, and updates the message as the request changes, whoever decided it.
 */
export class SlackBot {
  private readonly app: App;
  private readonly receiver: SignedInteractionsReceiver | undefined;
  private subscription: Subscription | undefined;
  /** Per request, the Slack calls in order: its message is posted before it is updated. */
  private readonly queues = new Map<string, Promise<void>>();
  private readonly warnedGroups = new Set<string>();

  constructor(
    private readonly settings: SlackSettings,
    private readonly desk: ApprovalDesk,
    private readonly feed: ApprovalFeed,
    private readonly directory: ReviewerDirectory,
    private readonly messages: SlackMessageRepository,
    private readonly logger: Logger,
    bindHost: string,
  ) {
    const clientOptions = { slackApiUrl: settings.apiUrl, retryConfig: { retries: 2, factor: 1.5 } };
    const boltLogger = boltLoggerOf(logger);
    if (settings.mode === 'http') {
      this.receiver = new SignedInteractionsReceiver({ signingSecret: settings.signingSecret!, host: bindHost, port: settings.port, logger });
      this.app = new App({ token: settings.botToken, receiver: this.receiver, clientOptions, logger: boltLogger, logLevel: LogLevel.WARN });
    } else {
      // The Socket Mode client opens its connection (apps.connections.open) with a WebClient of its
      // own, configured from installerOptions: without this it would ask slack.com whatever
      // TRACEGATE_SLACK_API_URL says.
      this.app = new App({
        token: settings.botToken,
        appToken: settings.appToken,
        socketMode: true,
        clientOptions,
        installerOptions: { clientOptions: { slackApiUrl: settings.apiUrl, retryConfig: { retries: 5, factor: 1.5 } } },
        logger: boltLogger,
        logLevel: LogLevel.WARN,
      });
    }
    this.app.action<BlockAction<ButtonAction>>(APPROVE_ACTION, async ({ ack, body, action, client }) => {
      await ack();
      await this.decideFromButton(client, body, action.value ?? '');
    });
    this.app.action<BlockAction<ButtonAction>>(DENY_ACTION, async ({ ack, body, action, client }) => {
      await ack();
      await this.openDenyModal(client, body, action.value ?? '');
    });
    this.app.view(DENY_MODAL, async ({ ack, body, view, client }) => {
      const id = view.private_metadata;
      const reason = view.state.values[DENY_REASON_BLOCK]?.[DENY_REASON_INPUT]?.value ?? '';
      const refuse = (message: string) => ack({ response_action: 'errors', errors: { [DENY_REASON_BLOCK]: message } });
      const reviewer = await this.reviewerFor(client, body.user.id);
      if (!reviewer) return refuse(unmapped(body.user.id));
      try {
        await this.desk.decide(id, reviewer, { kind: 'deny', reason });
      } catch (error) {
        if (error instanceof ApprovalError) return refuse(error.message);
        throw error;
      }
      await ack();
    });
    this.app.error(async (error) => {
      this.logger.error({ err: error }, 'the Slack bot failed to handle an interaction');
    });
  }

  async start(): Promise<void> {
    this.subscription = this.feed.all().subscribe((change) => this.reflect(change));
    await this.app.start();
    // A request opened while Slack could not be reached (or just before a crash) has no message
    // yet: reviewers in Slack would never hear of it.
    for (const approval of await this.desk.list('pending')) this.enqueue(approval.id, () => this.postUnlessPosted(approval));
    this.logger.info({ mode: this.settings.mode, channels: Object.fromEntries(this.settings.channels) }, 'Slack bot started');
  }

  async stop(): Promise<void> {
    this.subscription?.unsubscribe();
    await Promise.allSettled([...this.queues.values()]);
    await this.app.stop();
  }

  /** Posts the message about a new request, or updates it. */
  private reflect({ approval, version }: VersionedApproval): void {
    this.enqueue(approval.id, () => (version === 1 ? this.post(approval) : this.update(approval)));
  }

  /** One request's Slack calls run in order: its message is posted before it is updated. */
  private enqueue(id: string, call: () => Promise<void>): void {
    const next = (this.queues.get(id) ?? Promise.resolve())
      .then(call)
      .catch((error: unknown) => this.logger.error({ err: error, approval: id }, 'the Slack message about an approval request could not be sent'))
      .finally(() => {
        if (this.queues.get(id) === next) this.queues.delete(id);
      });
    this.queues.set(id, next);
  }

  private async postUnlessPosted(approval: Approval): Promise<void> {
    if (!(await this.messages.find(approval.id))) await this.post(approval);
  }

  private async post(approval: Approval): Promise<void> {
    const channel = this.settings.channels.get(approval.reviewerGroup) ?? this.settings.channels.get('*');
    if (!channel) {
      if (!this.warnedGroups.has(approval.reviewerGroup)) {
        this.warnedGroups.add(approval.reviewerGroup);
        this.logger.warn({ reviewerGroup: approval.reviewerGroup }, `no Slack channel for reviewer group '${approval.reviewerGroup}'; add ${approval.reviewerGroup}=<channel id> (or *=<channel id>) to TRACEGATE_SLACK_CHANNELS`);
      }
      return;
    }
    const posted = await this.app.client.chat.postMessage({ channel, ...approvalMessage(approval) });
    if (!posted.channel || !posted.ts) throw new Error('chat.postMessage answered without channel and ts');
    await this.messages.save({ approvalId: approval.id, channel: posted.channel, ts: posted.ts });
  }

  private async update(approval: Approval): Promise<void> {
    const message = await this.messages.find(approval.id);
    // Never posted (Slack was unreachable then): still worth asking while it is pending.
    if (!message) return approval.status === 'pending' ? this.post(approval) : undefined;
    await this.app.client.chat.update({ channel: message.channel, ts: message.ts, ...approvalMessage(approval) });
  }

  private async decideFromButton(client: WebClient, body: BlockAction, id: string): Promise<void> {
    const reviewer = await this.reviewerFor(client, body.user.id);
    if (!reviewer) return this.tell(client, body, unmapped(body.user.id));
    try {
      await this.desk.decide(id, reviewer, { kind: 'approve' });
    } catch (error) {
      if (!(error instanceof ApprovalError)) throw error;
      await this.tell(client, body, error.message);
    }
  }

  private async openDenyModal(client: WebClient, body: BlockAction, id: string): Promise<void> {
    const reviewer = await this.reviewerFor(client, body.user.id);
    if (!reviewer) return this.tell(client, body, unmapped(body.user.id));
    try {
      const { approval } = await this.desk.get(id);
      if (approval.status !== 'pending') return this.tell(client, body, `request ${id} is already ${approval.status}; there is nothing left to deny`);
      await client.views.open({ trigger_id: body.trigger_id, view: denyModal(approval) as never });
    } catch (error) {
      if (!(error instanceof ApprovalError)) throw error;
      await this.tell(client, body, error.message);
    }
  }

  /**
   * The tracegate identity a Slack user decides as: the configured mapping first, otherwise the
   * identity named by the user's Slack email (users.info, scope users:read.email).
   */
  private async reviewerFor(client: WebClient, slackUserId: string): Promise<Reviewer | undefined> {
    const mapped = this.settings.users.get(slackUserId);
    if (mapped) return this.directory.find(mapped);
    let email: string | undefined;
    try {
      email = (await client.users.info({ user: slackUserId })).user?.profile?.email;
    } catch (error) {
      this.logger.warn({ slackUser: slackUserId, err: (error as Error).message }, 'users.info failed; the Slack user is treated as unmapped');
      return undefined;
    }
    return email ? this.directory.find(email) : undefined;
  }

  /** An answer only the person who pressed the button sees. */
  private async tell(client: WebClient, body: BlockAction, text: string): Promise<void> {
    const channel = body.channel?.id;
    if (!channel) return;
    await client.chat.postEphemeral({ channel, user: body.user.id, text });
  }
}

function unmapped(slackUserId: string): string {
  return `your Slack account (${slackUserId}) is not a tracegate reviewer: ask an operator to map it (TRACEGATE_SLACK_USERS=${slackUserId}=<your identity>) or to name your human API key after your Slack email`;
}

function boltLoggerOf(logger: Logger): BoltLogger {
  const child = logger.child({ component: 'slack' });
  let level = LogLevel.WARN;
  return {
    debug: (...msg: unknown[]) => child.debug(msg.map(String).join(' ')),
    info: (...msg: unknown[]) => child.info(msg.map(String).join(' ')),
    warn: (...msg: unknown[]) => child.warn(msg.map(String).join(' ')),
    error: (...msg: unknown[]) => child.error(msg.map(String).join(' ')),
    setLevel: (l: LogLevel) => void (level = l),
    getLevel: () => level,
    setName: () => undefined,
  };
}
