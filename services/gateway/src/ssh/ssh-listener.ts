import { randomUUID } from 'node:crypto';
import type net from 'node:net';
import ssh2, { type AuthContext, type ClientInfo, type Connection } from 'ssh2';
import { assertPortFree, type Logger } from '@tracegate/runtime';
import type { ClientAuthenticator, CredentialBroker, MaskingProfiles, ReviewDesk, SessionRecorder, StatementJudge, TraceFeatures, TraceRegistry, VerifiedIdentity } from '../postgres/ports.js';
import { CommandChannel } from './command-channel.js';
import { disconnect, DisconnectReason } from './disconnect.js';
import { connectToTarget, TargetConnectError } from './upstream.js';

const { Server, utils } = ssh2;

export interface SshListenerOptions {
  readonly host: string;
  readonly port: number;
  /** The gateway's host private keys (OpenSSH format): what clients pin in known_hosts. */
  readonly hostKeys: readonly (Buffer | string)[];
  readonly upstreamTimeoutMs: number;
  /** The masking profile for commands whose decision names none; '' for none. */
  readonly maskingFallbackProfile?: string;
  /** Output lines kept per command in the audit trail. */
  readonly recordedLines: number;
  /** As sshd's MaxAuthTries: failed attempts before the connection is closed. Default 6. */
  readonly maxAuthTries?: number;
  /** As sshd's LoginGraceTime: a client must log in within this. Default 60 s. */
  readonly loginGraceMs?: number;
  /** With a terminal, output the masker holds back is let out after this long quiet. Default 40 ms. */
  readonly interactiveFlushMs?: number;
}

export interface SshPorts {
  readonly authenticator: ClientAuthenticator;
  readonly broker: CredentialBroker;
  readonly judge: StatementJudge;
  readonly recorder: SessionRecorder;
  readonly reviews?: ReviewDesk | undefined;
  readonly traces?: TraceRegistry | undefined;
  readonly masking?: MaskingProfiles | undefined;
}

/** How a client names who it is and where it goes: `ssh '<key name>:<target>'@gateway`. */
export function parseLogin(username: string): { keyName: string; target: string } | undefined {
  const colon = username.lastIndexOf(':');
  if (colon <= 0 || colon === username.length - 1) return undefined;
  return { keyName: username.slice(0, colon), target: username.slice(colon + 1) };
}

/** An OpenSSH public key line (`<type> <base64>`) from a key blob, whose first field names its type. */
export function publicKeyLine(blob: Buffer): string | undefined {
  if (blob.length < 4) return undefined;
  const length = blob.readUInt32BE(0);
  if (length === 0 || length > 64 || 4 + length > blob.length) return undefined;
  return `${blob.subarray(4, 4 + length).toString('latin1')} ${blob.toString('base64')}`;
}

const METHODS: ('publickey' | 'password' | 'keyboard-interactive')[] = ['publickey', 'password', 'keyboard-interactive'];

/**
 * The SSH listener clients point `ssh` at. A client logs in as `<key name>:<target>` with its API
 * key (password or keyboard-interactive) or a registered public key; the gateway then logs in to
 * the target with the broker's credential, checking the target's pinned host key, and each
 * command the client runs on the connection is decided, recorded and masked on its own channel.
 */
export class SshListener {
  private server: InstanceType<typeof Server> | undefined;
  private readonly connections = new Set<SshConnection>();

  constructor(
    private readonly options: SshListenerOptions,
    private readonly ports: SshPorts,
    private readonly logger: Logger,
  ) {}

  get connectionCount(): number {
    return this.connections.size;
  }

  async listen(): Promise<string> {
    await assertPortFree(this.options.host, this.options.port, 'gateway (SSH listener)', 'TRACEGATE_GATEWAY_SSH_PORT');
    const server = new Server({ hostKeys: [...this.options.hostKeys], ident: 'tracegate' }, (client, info) => this.accept(client, info));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.options.port, this.options.host, () => resolve());
    });
    // A client that breaks the protocol is that connection's problem, never the listener's.
    server.on('error', (error: Error) => this.logger.warn({ err: error.message }, 'SSH listener error'));
    const address = `${this.options.host}:${(server.address() as net.AddressInfo).port}`;
    this.logger.info({ address }, 'SSH listener is accepting connections');
    return address;
  }

  private accept(client: Connection, info: ClientInfo): void {
    const connection = new SshConnection(client, info, this.ports, this.options, this.logger);
    this.connections.add(connection);
    client.on('close', () => this.connections.delete(connection));
  }

  /** Stops accepting and tells every connected client why it is being disconnected. */
  async close(graceMs: number): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const connection of this.connections) connection.terminate('the tracegate gateway is shutting down; reconnect in a moment');
    await Promise.race([closed, new Promise((r) => setTimeout(r, graceMs).unref())]);
  }
}

/** One client connection: authentication, the target connection it leads to, and its channels. */
class SshConnection {
  private readonly sessionId = randomUUID();
  private readonly clientAddress: string;
  private identity: VerifiedIdentity | undefined;
  private leaseId: string | undefined;
  private upstream: ssh2.Client | undefined;
  private failures = 0;
  private attempts: Promise<void> = Promise.resolve();
  private ended = false;
  private recorded = false;
  private endReason = 'the client disconnected';
  private readonly loginTimer: NodeJS.Timeout;
  private readonly resolvedTraces = new Map<string, TraceFeatures>();

  constructor(
    private readonly client: Connection,
    private readonly info: ClientInfo,
    private readonly ports: SshPorts,
    private readonly options: SshListenerOptions,
    private readonly logger: Logger,
  ) {
    this.clientAddress = `${info.ip}:${info.port}`;
    this.loginTimer = setTimeout(() => this.terminate(`you did not log in within ${Math.round((options.loginGraceMs ?? 60_000) / 1000)} s`, DisconnectReason.BY_APPLICATION), options.loginGraceMs ?? 60_000);
    this.loginTimer.unref();
    // One attempt at a time, in the order they came: an attempt's answer never races another's.
    client.on('authentication', (context) => {
      this.attempts = this.attempts.then(() => this.authenticate(context)).catch((error: unknown) => {
        this.logger.error({ session: this.sessionId, err: (error as Error).message }, 'SSH authentication failed unexpectedly');
        this.terminate('tracegate could not complete your login; try again shortly', DisconnectReason.SERVICE_NOT_AVAILABLE);
      });
    });
    client.on('ready', () => clearTimeout(this.loginTimer));
    client.on('session', (accept, reject) => {
      const upstream = this.upstream;
      if (!upstream || !this.identity || this.ended) return reject();
      new CommandChannel(accept(), {
        sessionId: this.sessionId,
        identity: this.identity,
        target: this.target!,
        targetLabels: this.targetLabels,
        upstream,
        deps: { ...this.ports, logger },
        options: { maskingFallbackProfile: options.maskingFallbackProfile ?? '', recordedLines: options.recordedLines, interactiveFlushMs: options.interactiveFlushMs ?? 40 },
        resolvedTraces: this.resolvedTraces,
      });
    });
    // Forwarding would carry traffic no policy sees. With no 'tcpip' or 'openssh.streamlocal'
    // listener ssh2 refuses those channels as "administratively prohibited", which is what the
    // client should read; global requests (remote forwarding) are refused here.
    client.on('request', (_accept, reject) => reject?.());
    client.on('error', (error: Error) => {
      this.endReason = `connection error: ${error.message}`;
      this.logger.info({ session: this.sessionId, client: this.clientAddress, err: error.message }, 'SSH client connection error');
    });
    client.on('close', () => this.end());
  }

  private target: string | undefined;
  private targetLabels: Readonly<Record<string, string>> = {};

  private async authenticate(context: AuthContext): Promise<void> {
    if (this.ended) return;
    const login = parseLogin(context.username);
    if (!login) {
      return this.terminate(`log in as <key name>:<target>, for example ssh 'agent-1:web-1'@<gateway>; '${context.username.slice(0, 100)}' names no target`, DisconnectReason.ILLEGAL_USER_NAME);
    }
    if (this.target !== undefined && this.target !== login.target) {
      return this.terminate('one connection logs in to one target: the user name changed between attempts', DisconnectReason.ILLEGAL_USER_NAME);
    }
    this.target = login.target;
    let identity: VerifiedIdentity | undefined;
    try {
      switch (context.method) {
        case 'none':
          return context.reject(this.methods());
        case 'password':
          identity = await this.ports.authenticator.authenticate(login.keyName, context.password);
          break;
        case 'keyboard-interactive':
          identity = await new Promise<VerifiedIdentity | undefined>((resolve, reject) =>
            context.prompt([{ prompt: `tracegate API key for ${login.keyName}: `, echo: false }], 'tracegate', '', (answers) => {
              this.ports.authenticator.authenticate(login.keyName, answers[0] ?? '').then(resolve, reject);
            }),
          );
          break;
        case 'publickey': {
          const byKey = this.ports.authenticator.authenticatePublicKey?.bind(this.ports.authenticator);
          const line = publicKeyLine(context.key.data);
          if (!byKey || !line) return this.failed(context);
          if (context.signature && context.blob) {
            // The client proves it holds the private key; the broker only says whose key it is.
            const key = utils.parseKey(context.key.data);
            if (key instanceof Error || key.verify(context.blob, context.signature, context.hashAlgo) !== true) return this.failed(context);
          }
          identity = await byKey(login.keyName, line);
          // Without a signature the client only asks whether the key would do (RFC 4252 §7).
          if (identity && !context.signature) return context.accept();
          break;
        }
        default:
          return context.reject(this.methods());
      }
    } catch (error) {
      this.logger.error({ session: this.sessionId, err: (error as Error).message }, 'authentication service unavailable');
      return this.terminate('tracegate could not check your credentials right now; try again shortly', DisconnectReason.SERVICE_NOT_AVAILABLE);
    }
    if (!identity) return this.failed(context);
    if (this.identity) return this.identity.id === identity.id ? context.accept() : this.failed(context);
    this.identity = identity;
    if (await this.openTarget(login.target, identity)) context.accept();
  }

  private methods(): ('publickey' | 'password' | 'keyboard-interactive')[] {
    return this.ports.authenticator.authenticatePublicKey ? METHODS : METHODS.filter((m) => m !== 'publickey');
  }

  private failed(context: AuthContext): void {
    this.failures += 1;
    if (this.failures >= (this.options.maxAuthTries ?? 6)) {
      return this.terminate(`too many failed logins: use your tracegate API key as the password, or a public key registered with \`tracegate key add-ssh\``, DisconnectReason.NO_MORE_AUTH_METHODS_AVAILABLE);
    }
    context.reject(this.methods());
  }

  /** Leases the target's credential and logs in to it; on failure the client is told why and disconnected. */
  private async openTarget(target: string, identity: VerifiedIdentity): Promise<boolean> {
    let lease;
    try {
      lease = await this.ports.broker.checkout(target, this.sessionId, identity);
    } catch (error) {
      const message = /not registered/.test((error as Error).message)
        ? `target '${target}' is not registered with tracegate (see \`tracegate target list\`); log in as <key name>:<target>`
        : `tracegate could not lease a credential for target '${target}': ${(error as Error).message}`;
      this.terminate(message, DisconnectReason.ILLEGAL_USER_NAME);
      return false;
    }
    this.leaseId = lease.leaseId;
    this.targetLabels = lease.labels ?? {};
    try {
      this.upstream = await connectToTarget(lease, { timeoutMs: this.options.upstreamTimeoutMs });
    } catch (error) {
      const message = error instanceof TargetConnectError ? error.message : `the gateway could not log in to target '${target}'`;
      this.logger.warn({ session: this.sessionId, target, detail: (error as TargetConnectError).detail ?? (error as Error).message }, message);
      this.terminate(message, DisconnectReason.SERVICE_NOT_AVAILABLE);
      return false;
    }
    if (this.ended) {
      this.upstream.end();
      return false;
    }
    this.upstream.on('close', () => this.terminate(`target '${target}' closed the connection`, DisconnectReason.BY_APPLICATION));
    this.upstream.on('error', (error: Error) => this.logger.warn({ session: this.sessionId, err: error.message }, 'SSH target connection error'));
    try {
      await this.ports.recorder.sessionStarted({
        sessionId: this.sessionId,
        identity,
        target,
        clientAddress: this.clientAddress,
        applicationName: this.info.header.versions.software,
        leaseId: lease.leaseId,
        protocol: 'ssh',
      });
      this.recorded = true;
    } catch (error) {
      this.terminate(`the session could not be recorded, so it was not opened: ${(error as Error).message}`, DisconnectReason.SERVICE_NOT_AVAILABLE);
      return false;
    }
    return true;
  }

  /** Disconnects the client with a sentence it shows (and ends the session). */
  terminate(reason: string, code: DisconnectReason = DisconnectReason.BY_APPLICATION): void {
    if (this.ended) return;
    this.endReason = reason;
    try {
      disconnect(this.client, code, reason);
    } catch {
      this.client.end();
    }
    this.end();
  }

  private end(): void {
    if (this.ended) return;
    this.ended = true;
    clearTimeout(this.loginTimer);
    this.upstream?.removeAllListeners('close');
    this.upstream?.end();
    if (this.leaseId) void this.ports.broker.release(this.leaseId).catch(() => undefined);
    if (this.recorded) {
      this.ports.recorder.sessionEnded(this.sessionId, this.endReason).catch((error: unknown) =>
        this.logger.error({ session: this.sessionId, err: (error as Error).message }, 'session end could not be recorded'),
      );
    }
  }
}
