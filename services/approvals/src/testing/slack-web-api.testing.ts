import { createHash, createHmac, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

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
  /** Channels chat.postMessage answers `channel_not_found` for, as Slack does for one the bot cannot post in. */
  readonly refusePostsTo = new Set<string>();
  private server: Server | undefined;
  private messageCount = 0;
  private viewCount = 0;

  private socket: SocketModeConnection | undefined;
  private readonly socketWaiters: ((connection: SocketModeConnection) => void)[] = [];

  constructor(
    private readonly botToken: string,
    private readonly users: readonly SlackUser[],
    /** The app-level token Socket Mode's apps.connections.open presents. */
    private readonly appToken?: string,
  ) {}

  /** The Socket Mode connection the bot opened (waits for it). */
  socketMode(): Promise<SocketModeConnection> {
    if (this.socket?.open) return Promise.resolve(this.socket);
    return new Promise((resolve) => this.socketWaiters.push(resolve));
  }

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
        // apps.connections.open takes the app-level token; every other method the bot token.
        const expected = method === 'apps.connections.open' ? this.appToken : this.botToken;
        const authorised = expected !== undefined && token === expected;
        const body = authorised ? this.answer(method, args) : { ok: false, error: 'invalid_auth' };
        if (authorised) this.calls.push({ method, args, answer: body });
        res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' }).end(JSON.stringify(body));
      });
    });
    this.server.on('upgrade', (req: IncomingMessage, socket: Socket) => {
      const connection = SocketModeConnection.accept(req, socket);
      if (!connection) return;
      this.socket = connection;
      for (const waiter of this.socketWaiters.splice(0)) waiter(connection);
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
  }

  async stop(): Promise<void> {
    // The bot's closing handshake may still be under way (Bolt's stop does not wait for it); cutting
    // it short leaves the Socket Mode client waiting out its close timeout.
    if (this.socket) await Promise.race([this.socket.closed, new Promise((resolve) => setTimeout(resolve, 2_000).unref())]);
    await new Promise<void>((resolve) => {
      if (!this.server) return resolve();
      this.socket?.destroy();
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private answer(method: string, args: Record<string, unknown>): Record<string, unknown> {
    switch (method) {
      case 'apps.connections.open':
        return { ok: true, url: `ws://127.0.0.1:${(this.server!.address() as AddressInfo).port}/link/?ticket=${randomUUID()}&app_id=A0APP` };
      case 'auth.test':
        return { ok: true, url: 'https://tracegate-test.slack.com/', team: 'tracegate-test', user: 'tracegate', team_id: 'T0TRACE', user_id: 'U0BOT', bot_id: 'B0BOT', is_enterprise_install: false };
      case 'chat.postMessage': {
        if (this.refusePostsTo.has(args.channel as string)) return { ok: false, error: 'channel_not_found' };
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

const WEBSOCKET_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

/**
 * Slack's side of one Socket Mode connection (RFC 6455 framing, no extensions): it says hello,
 * answers pings, delivers envelopes and hands back the app's acknowledgement of each, as
 * https://api.slack.com/apis/socket-mode describes.
 */
export class SocketModeConnection {
  open = true;
  private buffer = Buffer.alloc(0);
  private readonly acks = new Map<string, (payload: Record<string, unknown>) => void>();

  /** Resolves once the TCP connection is gone. */
  readonly closed: Promise<void>;

  private constructor(private readonly socket: Socket) {
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
    socket.on('data', (chunk: Buffer) => this.read(chunk));
    socket.on('close', () => (this.open = false));
    socket.on('error', () => (this.open = false));
    this.sendText(JSON.stringify({ type: 'hello', num_connections: 1, debug_info: { host: 'applink-local', approximate_connection_time: 18060 }, connection_info: { app_id: 'A0APP' } }));
  }

  static accept(req: IncomingMessage, socket: Socket): SocketModeConnection | undefined {
    const key = req.headers['sec-websocket-key'];
    if (typeof key !== 'string') {
      socket.end('HTTP/1.1 400 Bad Request\r\n\r\n');
      return undefined;
    }
    const accept = createHash('sha1').update(key + WEBSOCKET_GUID).digest('base64');
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
    return new SocketModeConnection(socket);
  }

  /** Sends an interactive envelope (a button press, a modal submission) and resolves with the app's ack payload. */
  deliver(payload: Record<string, unknown>): Promise<Record<string, unknown>> {
    const envelopeId = randomUUID();
    const acked = new Promise<Record<string, unknown>>((resolve) => this.acks.set(envelopeId, resolve));
    this.sendText(JSON.stringify({ envelope_id: envelopeId, type: 'interactive', payload, accepts_response_payload: payload.type === 'view_submission' }));
    return acked;
  }

  destroy(): void {
    this.open = false;
    this.socket.destroy();
  }

  private sendText(text: string): void {
    this.socket.write(frame(0x1, Buffer.from(text)));
  }

  private read(chunk: Buffer): void {
    this.buffer = Buffer.concat([this.buffer, chunk]);
    for (;;) {
      const parsed = parseFrame(this.buffer);
      if (!parsed) return;
      this.buffer = this.buffer.subarray(parsed.length);
      if (parsed.opcode === 0x9) this.socket.write(frame(0xa, parsed.payload));
      else if (parsed.opcode === 0x8) {
        // The closing handshake: echo the status; the client then closes the TCP connection.
        this.socket.write(frame(0x8, parsed.payload.subarray(0, 2)));
        this.open = false;
      } else if (parsed.opcode === 0x1) {
        const message = JSON.parse(parsed.payload.toString('utf8')) as { envelope_id?: string; payload?: Record<string, unknown> };
        if (message.envelope_id) this.acks.get(message.envelope_id)?.(message.payload ?? {});
      }
    }
  }
}

/** A server frame: final, unmasked. */
function frame(opcode: number, payload: Buffer): Buffer {
  const length = payload.length;
  let header: Buffer;
  if (length < 126) header = Buffer.from([0x80 | opcode, length]);
  else if (length < 65_536) {
    header = Buffer.alloc(4);
    header[0] = 0x80 | opcode;
    header[1] = 126;
    header.writeUInt16BE(length, 2);
  } else {
    header = Buffer.alloc(10);
    header[0] = 0x80 | opcode;
    header[1] = 127;
    header.writeBigUInt64BE(BigInt(length), 2);
  }
  return Buffer.concat([header, payload]);
}

/** One whole client frame (clients always mask), or undefined until it has all arrived. */
function parseFrame(buffer: Buffer): { opcode: number; payload: Buffer; length: number } | undefined {
  if (buffer.length < 2) return undefined;
  const opcode = buffer[0]! & 0x0f;
  const masked = (buffer[1]! & 0x80) !== 0;
  let length = buffer[1]! & 0x7f;
  let offset = 2;
  if (length === 126) {
    if (buffer.length < 4) return undefined;
    length = buffer.readUInt16BE(2);
    offset = 4;
  } else if (length === 127) {
    if (buffer.length < 10) return undefined;
    length = Number(buffer.readBigUInt64BE(2));
    offset = 10;
  }
  const maskOffset = offset;
  if (masked) offset += 4;
  if (buffer.length < offset + length) return undefined;
  const payload = Buffer.from(buffer.subarray(offset, offset + length));
  if (masked) for (let i = 0; i < payload.length; i++) payload[i]! ^= buffer[maskOffset + (i % 4)]!;
  return { opcode, payload, length: offset + length };
}
