import net from 'node:net';
import tls from 'node:tls';
import { PROTOCOL_3_0, serializeFrontend, type FrontendMessage, type ProtocolVersion } from '../../protocol/postgres/index.js';
import { BackendFramer, BackendType, readReportFields, type BackendFrame } from '../backend-framer.js';
import { md5PasswordAnswer, ScramClient } from '../scram-client.js';

/**
 * A client that speaks the frontend protocol message by message, for tests that need exact
 * sequences no driver sends (pipelines, CopyFail, FunctionCall, protocol 3.2, hostile bytes) and
 * see every backend message the way it arrived.
 */
export class RawClient {
  private readonly framer = new BackendFramer(1024 * 1024 * 1024);
  private readonly frames: BackendFrame[] = [];
  private waiter: (() => void) | undefined;
  private ended = false;
  private socket: net.Socket;
  private markClosed: () => void = () => undefined;
  private answerWaiter: { resolve: (answer: string) => void; reject: (error: Error) => void } | undefined;
  /** Resolves when the connection is gone. */
  readonly closed: Promise<void>;
  /** Messages that came before authentication finished (NegotiateProtocolVersion), after `login`. */
  preLogin: BackendFrame[] = [];

  private constructor(socket: net.Socket) {
    this.socket = socket;
    this.closed = new Promise((resolve) => (this.markClosed = resolve));
    this.attach(socket);
  }

  /** Connects in plaintext. */
  static async connect(port: number, host = '127.0.0.1'): Promise<RawClient> {
    const socket = net.connect({ host, port });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    return new RawClient(socket);
  }

  /** Connects, sends SSLRequest, and on 'S' completes a TLS handshake (any certificate). */
  static async connectTls(port: number, host = '127.0.0.1'): Promise<RawClient> {
    const client = await RawClient.connect(port, host);
    await client.upgradeToTls();
    return client;
  }

  /** Sends SSLRequest and, on 'S', completes a TLS handshake (any certificate). */
  async upgradeToTls(): Promise<void> {
    this.send({ type: 'sslRequest' });
    const answer = await this.readEncryptionAnswer();
    if (answer !== 'S') throw new Error(`the server answered SSLRequest with '${answer}'`);
    await this.startTls();
  }

  private attach(socket: net.Socket): void {
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      this.ended = true;
      this.answerWaiter?.reject(new Error('the server closed the connection instead of answering'));
      this.answerWaiter = undefined;
      this.markClosed();
      this.wake();
    });
  }

  private onData(chunk: Buffer): void {
    const answer = this.answerWaiter;
    if (answer) {
      this.answerWaiter = undefined;
      const letter = String.fromCharCode(chunk[0]!);
      answer.resolve(letter);
      if (letter !== 'E') chunk = chunk.subarray(1);
    }
    this.framer.push(chunk, (frame) => this.frames.push({ ...frame, body: Buffer.from(frame.body) }));
    this.wake();
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }

  /**
   * The single byte answering SSLRequest or GSSENCRequest (call right after sending one). An
   * ErrorResponse instead is left to read as a frame, and 'E' returned.
   */
  async readEncryptionAnswer(): Promise<string> {
    return new Promise<string>((resolve, reject) => {
      if (this.ended) return reject(new Error('the server closed the connection instead of answering'));
      this.answerWaiter = { resolve, reject };
    });
  }

  private async startTls(): Promise<void> {
    const plain = this.socket;
    plain.removeAllListeners('data');
    plain.removeAllListeners('close');
    const secure = tls.connect({ socket: plain, rejectUnauthorized: false });
    await new Promise<void>((resolve, reject) => {
      secure.once('secureConnect', resolve);
      secure.once('error', reject);
    });
    this.socket = secure;
    this.attach(secure);
  }

  send(...messages: FrontendMessage[]): void {
    this.socket.write(Buffer.concat(messages.map((m) => serializeFrontend(m))));
  }

  writeRaw(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  /** The next backend message; rejects when the connection ends first. */
  async next(timeoutMs = 20_000): Promise<BackendFrame> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const frame = this.frames.shift();
      if (frame) return frame;
      if (this.ended) throw new Error('the server closed the connection');
      if (Date.now() > deadline) throw new Error(`no backend message within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        this.waiter = resolve;
        setTimeout(resolve, 200).unref();
      });
    }
  }

  /** Messages up to and including the next ReadyForQuery. */
  async untilReady(): Promise<BackendFrame[]> {
    const out: BackendFrame[] = [];
    for (;;) {
      const frame = await this.next();
      out.push(frame);
      if (frame.type === BackendType.ReadyForQuery) return out;
    }
  }

  /** Everything the server sends until it closes the connection. */
  async untilClosed(): Promise<BackendFrame[]> {
    await this.closed;
    return this.frames.splice(0);
  }

  /**
   * Start-up and authentication (cleartext, MD5 or SCRAM-SHA-256) up to ReadyForQuery. Returns the
   * messages after AuthenticationOk.
   */
  async login(parameters: Record<string, string>, password: string, protocolVersion: ProtocolVersion = PROTOCOL_3_0): Promise<BackendFrame[]> {
    this.send({ type: 'startupMessage', protocolVersion, parameters: new Map(Object.entries(parameters)) });
    let scram: ScramClient | undefined;
    const before: BackendFrame[] = [];
    for (;;) {
      const frame = await this.next();
      if (frame.type === BackendType.ErrorResponse) throw new Error(`login refused: ${describeError(frame)}`);
      if (frame.type !== BackendType.Authentication) {
        before.push(frame);
        continue;
      }
      const code = frame.body.readInt32BE(0);
      if (code === 0) break;
      if (code === 3) this.send({ type: 'passwordMessage', password });
      else if (code === 5) this.send({ type: 'passwordMessage', password: md5PasswordAnswer(parameters['user'] ?? '', password, frame.body.subarray(4, 8)) });
      else if (code === 10) {
        scram = new ScramClient(password);
        this.send({ type: 'saslInitialResponse', mechanism: 'SCRAM-SHA-256', data: scram.clientFirstMessage() });
      } else if (code === 11 && scram) this.send({ type: 'saslResponse', data: scram.clientFinalMessage(frame.body.subarray(4)) });
      else if (code === 12 && scram) scram.verifyServerFinal(frame.body.subarray(4));
      else throw new Error(`unexpected authentication request ${code}`);
    }
    const greeting = await this.untilReady();
    this.preLogin = before;
    return greeting;
  }

  end(): void {
    if (!this.ended) this.socket.end(serializeFrontend({ type: 'terminate' }));
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** "E 42501 agents may not …" for assertion messages. */
export function describeError(frame: BackendFrame): string {
  const fields = readReportFields(frame.body);
  return `${fields.get('S') ?? ''} ${fields.get('C') ?? ''} ${fields.get('M') ?? ''}`.trim();
}

export function sqlstateOf(frame: BackendFrame): string | undefined {
  return frame.type === BackendType.ErrorResponse || frame.type === BackendType.NoticeResponse ? readReportFields(frame.body).get('C') : undefined;
}

/** The type letters of a message sequence, e.g. "1 2 T D C Z". */
export function typesOf(frames: readonly BackendFrame[]): string {
  return frames.map((f) => String.fromCharCode(f.type)).join(' ');
}

/** A ReadyForQuery's transaction status: 'I', 'T' or 'E'. */
export function transactionStatus(frame: BackendFrame): string {
  return String.fromCharCode(frame.body[0]!);
}

