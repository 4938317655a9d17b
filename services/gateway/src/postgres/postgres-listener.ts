import { randomBytes, randomInt, timingSafeEqual } from 'node:crypto';
import net from 'node:net';
import type tls from 'node:tls';
import { assertPortFree, type Logger } from '@tracegate/runtime';
import { serializeFrontend } from '../protocol/postgres/index.js';
import { ClientSession, type SessionOptions } from './client-session.js';
import type { ClientAuthenticator, CredentialBroker, MaskingProfiles, ReviewDesk, SessionRecorder, StatementJudge, TraceRegistry, ViewCatalog } from './ports.js';
import { loadSqlParser } from './statements.js';
import { TargetViewCatalog } from './view-catalog.js';

export interface PostgresListenerOptions extends SessionOptions {
  readonly host: string;
  readonly port: number;
  readonly tls: tls.SecureContext | undefined;
}

/**
 * The Postgres wire listener clients point psql and drivers at. Owns the live sessions and the
 * mapping from the BackendKeyData the gateway issued to each client to the target backend's, so
 * a CancelRequest reaches the right backend on a fresh connection — never a reused one.
 */
export class PostgresListener {
  private server: net.Server | undefined;
  private readonly sessions = new Set<ClientSession>();
  private readonly byProcessId = new Map<number, { session: ClientSession; secretKey: Buffer }>();
  /** Shared by all sessions: each target's views are read once, not per session. */
  private readonly views: ViewCatalog;

  constructor(
    private readonly options: PostgresListenerOptions,
    private readonly ports: { authenticator: ClientAuthenticator; broker: CredentialBroker; judge: StatementJudge; recorder: SessionRecorder; reviews?: ReviewDesk; traces?: TraceRegistry; masking?: MaskingProfiles; views?: ViewCatalog },
    private readonly logger: Logger,
  ) {
    this.views = ports.views ?? new TargetViewCatalog({ timeoutMs: options.upstreamTimeoutMs, maxMessageLength: options.maxMessageLength, logger });
  }

  get sessionCount(): number {
    return this.sessions.size;
  }

  async listen(): Promise<string> {
    await loadSqlParser();
    await assertPortFree(this.options.host, this.options.port, 'gateway (Postgres listener)', 'TRACEGATE_GATEWAY_POSTGRES_PORT');
    const server = net.createServer((socket) => this.accept(socket));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.options.port, this.options.host, () => resolve());
    });
    const address = `${this.options.host}:${(server.address() as net.AddressInfo).port}`;
    this.logger.info({ address, tls: Boolean(this.options.tls) }, 'Postgres listener is accepting connections');
    return address;
  }

  private accept(socket: net.Socket): void {
    const session: ClientSession = new ClientSession(
      socket,
      {
        ...this.ports,
        reviews: this.ports.reviews,
        traces: this.ports.traces,
        masking: this.ports.masking,
        views: this.views,
        logger: this.logger,
        register: (s) => this.register(s),
        unregister: (s) => this.unregister(s),
        cancel: (pid, key) => this.cancel(pid, key),
      },
      this.options,
    );
    this.sessions.add(session);
    socket.once('close', () => this.sessions.delete(session));
  }

  private register(session: ClientSession): { processId: number; secretKey: Buffer } {
    let processId: number;
    do processId = randomInt(1, 0x7fffffff);
    while (this.byProcessId.has(processId));
    const secretKey = randomBytes(4);
    this.byProcessId.set(processId, { session, secretKey });
    return { processId, secretKey };
  }

  private unregister(session: ClientSession): void {
    this.sessions.delete(session);
    for (const [pid, entry] of this.byProcessId) if (entry.session === session) this.byProcessId.delete(pid);
  }

  /** "Canceling Requests in Progress": a new connection carrying the target's own key. */
  private async cancel(processId: number, secretKey: Buffer): Promise<void> {
    const entry = this.byProcessId.get(processId);
    if (!entry || entry.secretKey.length !== secretKey.length || !timingSafeEqual(entry.secretKey, secretKey)) {
      // PostgreSQL answers a wrong key with silence; so do we.
      this.logger.info({ processId }, 'CancelRequest with an unknown process id or key ignored');
      return;
    }
    const key = entry.session.upstreamKey;
    const address = entry.session.upstreamAddress;
    if (!key || !address) return;
    await new Promise<void>((resolve) => {
      const socket = net.connect({ host: address.host, port: address.port }, () => {
        socket.end(serializeFrontend({ type: 'cancelRequest', processId: key.processId, secretKey: key.secretKey }));
      });
      socket.once('close', () => resolve());
      socket.once('error', () => resolve());
    });
  }

  /** Stops accepting, tells live sessions the gateway is shutting down, and waits for them to go. */
  async close(graceMs: number): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const session of this.sessions) session.terminate('the gateway is shutting down');
    await Promise.race([closed, new Promise((r) => setTimeout(r, graceMs).unref())]);
  }
}
