import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { App, Receiver, ReceiverEvent } from '@slack/bolt';
import { assertPortFree, type Logger } from '@tracegate/runtime';

/** Slack's own window: a request older (or newer) than five minutes is refused. */
export const SIGNATURE_WINDOW_SECONDS = 300;
const BODY_LIMIT = 1024 * 1024;
const ACK_TIMEOUT_MS = 2_500; // Slack waits 3 s for the HTTP answer

/**
 * Slack's HTTP interactions, verified as Slack documents it (HMAC-SHA256 of `v0:<timestamp>:<body>`
 * with the signing secret, timestamp within five minutes), plus what Bolt's own receiver does not
 * do: a signature is accepted once, so a captured request cannot be replayed within the window.
 * A request that fails any check gets 401 and never reaches the app.
 */
export class SignedInteractionsReceiver implements Receiver {
  private app: App | undefined;
  private server: Server | undefined;
  /** Signatures seen, with when they stop mattering (their timestamp leaves the window). */
  private readonly seen = new Map<string, number>();

  constructor(
    private readonly options: {
      readonly signingSecret: string;
      readonly host: string;
      readonly port: number;
      readonly logger: Logger;
      readonly now?: () => number;
    },
  ) {}

  init(app: App): void {
    this.app = app;
  }

  async start(): Promise<Server> {
    // The same sentence as for the gRPC and metrics ports: which port, and the variable that moves it.
    await assertPortFree(this.options.host, this.options.port, 'the approvals Slack interactions endpoint', 'TRACEGATE_SLACK_PORT');
    const server = createServer((req, res) => {
      this.handle(req, res).catch((error: unknown) => {
        this.options.logger.error({ err: error }, 'a Slack interaction failed');
        if (!res.headersSent) res.writeHead(500).end();
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.options.port, this.options.host, () => resolve());
    });
    this.server = server;
    const { port } = server.address() as AddressInfo;
    this.options.logger.info({ port }, 'Slack interactions endpoint listening (HTTP mode)');
    return server;
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeIdleConnections();
    });
  }

  private nowSeconds(): number {
    return Math.floor((this.options.now?.() ?? Date.now()) / 1000);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method !== 'POST') {
      res.writeHead(405, { allow: 'POST' }).end();
      return;
    }
    const raw = await readBody(req);
    if (raw === undefined) {
      res.writeHead(413).end();
      return;
    }
    const refusal = this.verify(req, raw);
    if (refusal) {
      // Says why in the log (for the operator), and nothing more to the caller.
      this.options.logger.warn({ reason: refusal, remote: req.socket.remoteAddress }, 'refused a Slack request');
      res.writeHead(401, { 'content-type': 'text/plain' }).end('invalid request signature\n');
      return;
    }
    const body = parseBody(req.headers['content-type'] ?? '', raw.toString('utf8'));
    if (!body) {
      res.writeHead(400, { 'content-type': 'text/plain' }).end('the body is neither a form with a JSON payload nor JSON\n');
      return;
    }
    if (body.type === 'url_verification' && typeof body.challenge === 'string') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ challenge: body.challenge }));
      return;
    }
    if (!this.app) throw new Error('the Slack receiver was started before Bolt initialised it');
    let acked = false;
    const timer = setTimeout(() => {
      if (!acked) this.options.logger.warn({ type: body.type }, 'a Slack interaction was not acknowledged within 2.5 s');
    }, ACK_TIMEOUT_MS);
    timer.unref();
    const event: ReceiverEvent = {
      body,
      ack: async (response?: unknown) => {
        if (acked) return;
        acked = true;
        clearTimeout(timer);
        if (response === undefined || response === '') res.writeHead(200).end();
        else if (typeof response === 'string') res.writeHead(200, { 'content-type': 'text/plain' }).end(response);
        else res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(response));
      },
    };
    await this.app.processEvent(event);
    if (!acked) {
      acked = true;
      res.writeHead(200).end();
    }
  }

  /** undefined when the request is Slack's and new; otherwise why it is refused. */
  private verify(req: IncomingMessage, raw: Buffer): string | undefined {
    const signature = header(req, 'x-slack-signature');
    const timestamp = header(req, 'x-slack-request-timestamp');
    if (!signature || !timestamp) return 'no X-Slack-Signature or X-Slack-Request-Timestamp header';
    const ts = Number(timestamp);
    const now = this.nowSeconds();
    if (!/^\d{1,12}$/.test(timestamp) || Math.abs(now - ts) > SIGNATURE_WINDOW_SECONDS) return 'the request timestamp is outside the five-minute window';
    const expected = `v0=${createHmac('sha256', this.options.signingSecret).update(`v0:${timestamp}:`).update(raw).digest('hex')}`;
    const presented = Buffer.from(signature);
    if (presented.length !== expected.length || !timingSafeEqual(presented, Buffer.from(expected))) return 'the signature does not match the signing secret';
    this.forgetOld(now);
    if (this.seen.has(signature)) return 'the signature was used before (a replay)';
    this.seen.set(signature, ts + SIGNATURE_WINDOW_SECONDS);
    return undefined;
  }

  private forgetOld(now: number): void {
    for (const [signature, until] of this.seen) if (until < now) this.seen.delete(signature);
  }
}

function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return typeof value === 'string' ? value : undefined;
}

async function readBody(req: IncomingMessage): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > BODY_LIMIT) return undefined;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/** Interactions come as a form with a JSON `payload`; Events API requests as JSON. */
function parseBody(contentType: string, text: string): Record<string, unknown> | undefined {
  try {
    if (contentType.startsWith('application/x-www-form-urlencoded')) {
      const form = new URLSearchParams(text);
      const payload = form.get('payload');
      if (payload !== null) return JSON.parse(payload) as Record<string, unknown>;
      return Object.fromEntries(form);
    }
    const parsed: unknown = JSON.parse(text);
    return parsed !== null && typeof parsed === 'object' ? (parsed as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}
