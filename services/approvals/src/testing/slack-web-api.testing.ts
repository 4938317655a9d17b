import { createHmac } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One Web API call the bot made: the method and its arguments (JSON-valued ones decoded). */
export interface SlackCall {
  readonly method: string;
  readonly args: Record<string, unknown>;
  /** What the local Web API answered. */
  readonly answer: Record<string, unknown>;
}

export interface SlackUser {
  readonly id: string;
  readonly name: string;
  readonly email?: string;
}

/**
 * The Slack Web API methods the bot uses, on a local port, answering with Slack's own JSON shapes
 * (https://api.slack.com/methods): auth.test, chat.postMessage, chat.update, chat.postEphemeral,
 * views.open, users.info. Like Slack it answers HTTP 200 with `ok: false` and an error code for a
 * bad token or an unknown user. The bot's WebClient reaches it through TRACEGATE_SLACK_API_URL.
 */
export class SlackWebApi {
  readonly calls: SlackCall[] = [];
  private server: Server | undefined;
  private messageCount = 0;
  private viewCount = 0;

  constructor(
    private readonly botToken: string,
    private readonly users: readonly SlackUser[],
  ) {}

  get url(): string {
    return `http://127.0.0.1:${(this.server!.address() as AddressInfo).port}/api/`;
  }

  callsOf(method: string): SlackCall[] {
    return this.calls.filter((c) => c.method === method);
  }

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        const method = (req.url ?? '').replace(/^\/api\//, '').split('?')[0]!;
        const args = decodeArgs(req.headers['content-type'] ?? '', Buffer.concat(chunks).toString('utf8'));
        const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1] ?? (args.token as string | undefined);
        const body = token === this.botToken ? this.answer(method, args) : { ok: false, error: 'invalid_auth' };
        if (token === this.botToken) this.calls.push({ method, args, answer: body });
        res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' }).end(JSON.stringify(body));
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => {
      if (!this.server) return resolve();
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private answer(method: string, args: Record<string, unknown>): Record<string, unknown> {
    switch (method) {
      case 'auth.test':
        return { ok: true, url: 'https://tracegate-test.slack.com/', team: 'tracegate-test', user: 'tracegate', team_id: 'T0TRACE', user_id: 'U0BOT', bot_id: 'B0BOT', is_enterprise_install: false };
      case 'chat.postMessage': {
        const ts = `${Math.floor(Date.now() / 1000)}.${String(++this.messageCount).padStart(6, '0')}`;
        return { ok: true, channel: args.channel, ts, message: { type: 'message', subtype: 'bot_message', text: args.text, ts, bot_id: 'B0BOT', blocks: args.blocks } };
      }
      case 'chat.update':
        return { ok: true, channel: args.channel, ts: args.ts, text: args.text, message: { text: args.text, blocks: args.blocks } };
      case 'chat.postEphemeral':
        return { ok: true, message_ts: `${Math.floor(Date.now() / 1000)}.${String(++this.messageCount).padStart(6, '0')}` };
      case 'views.open': {
        const view = args.view as Record<string, unknown>;
        return { ok: true, view: { id: `V0${++this.viewCount}`, team_id: 'T0TRACE', state: { values: {} }, hash: `${Date.now()}.abc`, app_id: 'A0APP', bot_id: 'B0BOT', ...view } };
      }
      case 'users.info': {
        const user = this.users.find((u) => u.id === args.user);
        if (!user) return { ok: false, error: 'user_not_found' };
        return {
          ok: true,
          user: { id: user.id, team_id: 'T0TRACE', name: user.name, deleted: false, real_name: user.name, is_bot: false, profile: { real_name: user.name, display_name: user.name, ...(user.email ? { email: user.email } : {}) } },
        };
      }
      default:
        return { ok: false, error: 'unknown_method' };
    }
  }
}

/** WebClient posts form fields, JSON-encoding the structured ones (blocks, view). */
function decodeArgs(contentType: string, text: string): Record<string, unknown> {
  if (contentType.startsWith('application/json')) return JSON.parse(text || '{}') as Record<string, unknown>;
  const args: Record<string, unknown> = {};
  for (const [key, value] of new URLSearchParams(text)) {
    try {
      args[key] = /^[[{]/.test(value) ? JSON.parse(value) : value;
    } catch {
      args[key] = value;
    }
  }
  return args;
}

/** A request as Slack signs it: `v0=` HMAC-SHA256 of `v0:<timestamp>:<body>` under the signing secret. */
export function signedInteraction(signingSecret: string, payload: unknown, timestampSeconds = Math.floor(Date.now() / 1000)): { body: string; headers: Record<string, string> } {
  const body = `payload=${encodeURIComponent(JSON.stringify(payload))}`;
  const signature = `v0=${createHmac('sha256', signingSecret).update(`v0:${timestampSeconds}:${body}`).digest('hex')}`;
  return {
    body,
    headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-slack-request-timestamp': String(timestampSeconds), 'x-slack-signature': signature },
  };
}

/** A block_actions payload for a button press in a channel message, as Slack sends it. */
export function buttonPress(user: SlackUser, message: { channel: string; ts: string; blocks: unknown }, actionId: string, value: string): Record<string, unknown> {
  return {
    type: 'block_actions',
    team: { id: 'T0TRACE', domain: 'tracegate-test' },
    user: { id: user.id, username: user.name, name: user.name, team_id: 'T0TRACE' },
    api_app_id: 'A0APP',
    token: 'legacy-verification-token',
    container: { type: 'message', message_ts: message.ts, channel_id: message.channel, is_ephemeral: false },
    trigger_id: `${Date.now()}.1234567890.abcdef${Math.random().toString(16).slice(2, 8)}`,
    channel: { id: message.channel, name: 'reviews' },
    message: { type: 'message', subtype: 'bot_message', ts: message.ts, bot_id: 'B0BOT', blocks: message.blocks },
    response_url: 'https://hooks.slack.com/actions/T0TRACE/1/unused',
    actions: [{ type: 'button', action_id: actionId, block_id: 'verdict', value, text: { type: 'plain_text', text: actionId }, action_ts: `${Date.now() / 1000}` }],
  };
}

/** A view_submission payload for a modal the bot opened. */
export function modalSubmission(user: SlackUser, view: Record<string, unknown>, values: Record<string, Record<string, { type: string; value: string | null }>>): Record<string, unknown> {
  return {
    type: 'view_submission',
    team: { id: 'T0TRACE', domain: 'tracegate-test' },
    user: { id: user.id, username: user.name, name: user.name, team_id: 'T0TRACE' },
    api_app_id: 'A0APP',
    token: 'legacy-verification-token',
    trigger_id: `${Date.now()}.1234567890.fedcba`,
    view: { ...view, state: { values } },
    response_urls: [],
    is_enterprise_install: false,
  };
}
