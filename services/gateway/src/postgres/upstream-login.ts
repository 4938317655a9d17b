import net from 'node:net';
import tls from 'node:tls';
import { serializeFrontend, PROTOCOL_3_0 } from '../protocol/postgres/index.js';
import { BackendFramer, BackendType, readCString, readReportFields, type BackendFrame } from './backend-framer.js';
import { md5PasswordAnswer, ScramClient, ScramError } from './scram-client.js';

export type TargetTls = 'disable' | 'require' | 'verify-full';

/** Where and as whom the gateway logs in: from the broker's credential lease, never from the client. */
export interface TargetEndpoint {
  readonly name: string;
  readonly host: string;
  readonly port: number;
  readonly database: string;
  readonly user: string;
  readonly password: string;
  readonly tls: TargetTls;
}

export interface UpstreamConnection {
  readonly socket: net.Socket;
  /** ParameterStatus values the target reported at login, relayed to the client. */
  readonly parameters: ReadonlyMap<string, string>;
  /** The target's BackendKeyData: what a CancelRequest must carry to reach this backend. */
  readonly processId: number;
  readonly secretKey: Buffer;
  /**
   * What the target sent after its ReadyForQuery in the same reads (a NoticeResponse, a
   * ParameterStatus…): the session relays it first. The socket is paused until the session reads it.
   */
  readonly afterLogin: Buffer;
}

/**
 * A login failure. `message` is safe for the client (it names the target, never the credential);
 * `detail` is the target's own words, for the gateway's log only.
 */
export class UpstreamLoginError extends Error {
  override readonly name = 'UpstreamLoginError';
  constructor(
    message: string,
    readonly detail: string,
  ) {
    super(message);
  }
}

/**
 * Start-up parameters a client may pass through to the target. Anything else — above all
 * `options`, which can set any GUC such as `role` — is dropped: the gateway decides who the
 * session runs as.
 */
const FORWARDED_PARAMETERS = new Set(['application_name', 'client_encoding', 'datestyle', 'intervalstyle', 'timezone', 'extra_float_digits']);

export function forwardedParameters(client: ReadonlyMap<string, string>): Map<string, string> {
  const out = new Map<string, string>();
  for (const [name, value] of client) if (FORWARDED_PARAMETERS.has(name.toLowerCase())) out.set(name, value);
  return out;
}

export async function loginToTarget(
  target: TargetEndpoint,
  clientParameters: ReadonlyMap<string, string>,
  options: { timeoutMs: number; maxMessageLength: number },
): Promise<UpstreamConnection> {
  const cannot = (why: string, detail = why) => new UpstreamLoginError(`the gateway could not log in to target '${target.name}': ${why}`, detail);
  let socket: net.Socket = await connect(target, options.timeoutMs).catch((error: Error) => {
    throw cannot(`${target.host}:${target.port} is unreachable (${(error as NodeJS.ErrnoException).code ?? error.message})`, error.message);
  });
  const timer = setTimeout(() => socket.destroy(new Error(`no answer within ${options.timeoutMs} ms`)), options.timeoutMs);
  try {
    if (target.tls !== 'disable') socket = await upgradeToTls(socket, target, cannot);
    const frames = new FrameReader(socket, options.maxMessageLength);
    const parameters = new Map<string, string>([['user', target.user], ['database', target.database], ...forwardedParameters(clientParameters)]);
    socket.write(serializeFrontend({ type: 'startupMessage', protocolVersion: PROTOCOL_3_0, parameters }));

    const reported = new Map<string, string>();
    let processId = 0;
    let secretKey = Buffer.alloc(0);
    let scram: ScramClient | undefined;
    for (;;) {
      const frame = await frames.next();
      switch (frame.type) {
        case BackendType.Authentication: {
          const code = frame.body.readInt32BE(0);
          if (code === 0) break; // AuthenticationOk
          if (code === 3) {
            if (target.tls === 'disable') throw cannot('it asked for a cleartext password over an unencrypted connection; register the target with --tls require');
            socket.write(serializeFrontend({ type: 'passwordMessage', password: target.password }));
          } else if (code === 5) {
            socket.write(serializeFrontend({ type: 'passwordMessage', password: md5PasswordAnswer(target.user, target.password, frame.body.subarray(4, 8)) }));
          } else if (code === 10) {
            const mechanisms = frame.body.toString('utf8', 4).split('\0').filter(Boolean);
            if (!mechanisms.includes('SCRAM-SHA-256')) throw cannot(`it offers only SASL mechanisms ${mechanisms.join(', ')}; the gateway speaks SCRAM-SHA-256`);
            scram = new ScramClient(target.password);
            socket.write(serializeFrontend({ type: 'saslInitialResponse', mechanism: 'SCRAM-SHA-256', data: scram.clientFirstMessage() }));
          } else if (code === 11 && scram) {
            socket.write(serializeFrontend({ type: 'saslResponse', data: scram.clientFinalMessage(Buffer.from(frame.body.subarray(4))) }));
          } else if (code === 12 && scram) {
            scram.verifyServerFinal(Buffer.from(frame.body.subarray(4)));
          } else {
            throw cannot(`it asked for an authentication method the gateway does not speak (code ${code})`);
          }
          break;
        }
        case BackendType.ParameterStatus: {
          const name = readCString(frame.body);
          reported.set(name, readCString(frame.body, Buffer.byteLength(name) + 1));
          break;
        }
        case BackendType.BackendKeyData:
          processId = frame.body.readInt32BE(0);
          secretKey = Buffer.from(frame.body.subarray(4));
          break;
        case BackendType.ErrorResponse: {
          const fields = readReportFields(frame.body);
          const sqlstate = fields.get('C') ?? '';
          // 28xxx: the brokered credential was refused — the caller's fault it is not, and the
          // target's exact words (which name the role) stay in our log.
          const why = sqlstate.startsWith('28') ? 'it refused the brokered credential' : `it answered ${sqlstate}: ${fields.get('M') ?? ''}`;
          throw cannot(why, `${sqlstate} ${fields.get('M') ?? ''}`);
        }
        case BackendType.ReadyForQuery: {
          const afterLogin = frames.detach();
          return { socket, parameters: reported, processId, secretKey, afterLogin };
        }
        default:
          break; // NoticeResponse, NegotiateProtocolVersion: nothing to do at login
      }
    }
  } catch (error) {
    socket.destroy();
    if (error instanceof UpstreamLoginError) throw error;
    if (error instanceof ScramError) throw cannot(error.message);
    throw cannot((error as Error).message);
  } finally {
    clearTimeout(timer);
  }
}

function connect(target: TargetEndpoint, timeoutMs: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: target.host, port: target.port, noDelay: true, timeout: timeoutMs });
    socket.once('connect', () => {
      socket.setTimeout(0);
      socket.removeListener('error', reject);
      resolve(socket);
    });
    socket.once('timeout', () => socket.destroy(new Error(`connect timed out after ${timeoutMs} ms`)));
    socket.once('error', reject);
  });
}

async function upgradeToTls(socket: net.Socket, target: TargetEndpoint, cannot: (why: string) => UpstreamLoginError): Promise<net.Socket> {
  socket.write(serializeFrontend({ type: 'sslRequest' }));
  const answer = await new Promise<number>((resolve, reject) => {
    socket.once('data', (data: Buffer) => resolve(data[0]!));
    socket.once('error', reject);
  });
  if (answer !== 0x53) throw cannot('it does not accept TLS, but the target is registered with TLS required');
  return new Promise((resolve, reject) => {
    const secure = tls.connect({ socket, servername: target.host, rejectUnauthorized: target.tls === 'verify-full' }, () => resolve(secure));
    secure.once('error', (error) => reject(cannot(`the TLS handshake failed: ${error.message}`)));
  });
}

/** Awaitable frames from a socket, for the login exchange only. */
class FrameReader {
  private readonly framer: BackendFramer;
  private readonly queue: BackendFrame[] = [];
  private waiter: { resolve: (f: BackendFrame) => void; reject: (e: Error) => void } | undefined;
  private failure: Error | undefined;
  private readonly onData = (chunk: Buffer) => {
    try {
      this.framer.push(chunk, (frame) => {
        const copy = { ...frame, body: Buffer.from(frame.body) };
        if (this.waiter) {
          const w = this.waiter;
          this.waiter = undefined;
          w.resolve(copy);
        } else this.queue.push(copy);
      });
    } catch (error) {
      this.fail(error as Error);
    }
  };
  private readonly onEnd = () => this.fail(new Error('the target closed the connection during login'));
  private readonly onError = (error: Error) => this.fail(error);

  constructor(
    private readonly socket: net.Socket,
    maxMessageLength: number,
  ) {
    this.framer = new BackendFramer(maxMessageLength);
    socket.on('data', this.onData);
    socket.on('end', this.onEnd);
    socket.on('error', this.onError);
  }

  next(): Promise<BackendFrame> {
    const queued = this.queue.shift();
    if (queued) return Promise.resolve(queued);
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => (this.waiter = { resolve, reject }));
  }

  /**
   * Hands the socket over to the session, paused so nothing is read before the session listens,
   * with the bytes that came after the last frame read (a target may send more right after
   * ReadyForQuery, in the same packet).
   */
  detach(): Buffer {
    this.socket.pause();
    this.socket.off('data', this.onData);
    this.socket.off('end', this.onEnd);
    this.socket.off('error', this.onError);
    const unread = this.queue.splice(0).map((frame) => {
      const header = Buffer.alloc(5);
      header[0] = frame.type;
      header.writeInt32BE(frame.body.length + 4, 1);
      return Buffer.concat([header, frame.body]);
    });
    return Buffer.concat([...unread, this.framer.takeRemainder()]);
  }

  private fail(error: Error) {
    this.failure = error;
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = undefined;
      w.reject(error);
    }
  }
}
