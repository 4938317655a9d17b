import { randomUUID } from 'node:crypto';
import type net from 'node:net';
import tls from 'node:tls';
import type { Logger } from '@tracegate/runtime';
import {
  FrontendParser,
  serializeBackend,
  serializeFrontend,
  type BindMessage,
  type ErrorFields,
  type NoticeFields,
  type FrontendMessage,
  type ParseMessage,
  type ProtocolViolation,
  type StartupMessage,
} from '../protocol/postgres/index.js';
import { BackendFramer, BackendType, readCString, readReportFields, type BackendFrame } from './backend-framer.js';
import { TraceRefusal, type ClientAuthenticator, type CredentialBroker, type ReviewDesk, type SessionRecorder, type StatementContext, type StatementDecision, type StatementJudge, type TraceFeatures, type TraceRegistry, type VerifiedIdentity, type MaskingProfile, type MaskingProfiles, type ResultColumn, type ResultMaskPlan, type StatementLineage, type ViewCatalog } from './ports.js';
import { NamedQueries } from './named-queries.js';
import { addHits, backendMessage, copyData, readDataRow, readRowDescription, redactReport, withResultFormats } from './result-messages.js';
import { blankTraceComments, namesTraceSetting, sessionTraceSetting, type BlankedQuery, type TraceAttachment } from './trace-comments.js';
import { denialStatement, splitStatements, type SqlStatement } from './statements.js';
import { loginToTarget, UpstreamLoginError, type UpstreamConnection } from './upstream-login.js';
import { SessionViews } from './view-catalog.js';
import { awaitedReviewers, CommandGate } from '../command-gate.js';

export interface SessionOptions {
  readonly tls: tls.SecureContext | undefined;
  /** Refuse clients that did not negotiate TLS (their password is an API key). */
  readonly requireTls: boolean;
  readonly upstreamTimeoutMs: number;
  readonly maxMessageLength: number;
  /**
   * How long a client has from connecting to sending its password (PostgreSQL's
   * authentication_timeout). Default 60 s. Without it, idle half-open connections pile up.
   */
  readonly startupTimeoutMs?: number;
  /** How many rows of each result the audit trail keeps (after masking); 0 keeps none. */
  readonly recordedRows?: number;
  /** The masking profile of statements whose decision names none ('' for none). */
  readonly maskingFallbackProfile?: string;
}

const DEFAULT_STARTUP_TIMEOUT_MS = 60_000;

export interface SessionDependencies {
  readonly authenticator: ClientAuthenticator;
  readonly broker: CredentialBroker;
  readonly judge: StatementJudge;
  readonly recorder: SessionRecorder;
  /** Where statements whose effect is review are held; without one, review is refused. */
  readonly reviews: ReviewDesk | undefined;
  /** The masking profiles in force; without them no result is masked, and one naming a profile is refused. */
  readonly masking: MaskingProfiles | undefined;
  /** Where attached reasoning traces are checked and inline ones stored; without one, a trace is refused. */
  readonly traces: TraceRegistry | undefined;
  /** The targets' views, for masking columns read through them; without it, a view is seen as a table. */
  readonly views?: ViewCatalog;
  readonly logger: Logger;
  /** Registers this session for CancelRequests; returns the (processId, secretKey) the client gets. */
  register(session: ClientSession): { processId: number; secretKey: Buffer };
  unregister(session: ClientSession): void;
  /** Forwards a CancelRequest a client sent on a new connection. */
  cancel(processId: number, secretKey: Buffer): Promise<void>;
}

interface PreparedStatement {
  readonly context: StatementContext;
  readonly decision: StatementDecision | undefined;
  /** Set for a denied statement: the record of its refusal, which its executions answer to. */
  readonly deniedStatementId: string | undefined;
  /**
   * A statement the client prepared with SQL PREPARE and binds by name: the gateway never saw it
   * parsed, so each Bind is decided as the EXECUTE it amounts to.
   */
  readonly preparedInSql?: boolean;
  /**
   * Refused when bound, not when parsed (SQL PREPARE, or a policy changed since the Parse): the
   * target holds the real statement, not the denial statement, so the Bind must not reach it.
   */
  readonly refusedAtBind?: boolean;
  /** The columns a Describe of the statement reported (formats all text), shared by copies of this entry. */
  readonly shape?: { columns?: ResultColumn[]; describing?: boolean };
}

/**
 * A Parse or Close sent to the target, until its reply shows whether it took effect: a Parse the
 * target refuses (a duplicate name, a missing table) or skips (after an earlier error in its
 * batch) leaves the old statement in force there, and so must it here.
 */
interface StatementChange {
  /** The statement or portal name. */
  readonly name: string;
  /** The new statement (Parse), or undefined (Close). A portal Close changes no statement. */
  readonly entry: PreparedStatement | undefined;
  readonly kind: 'statement' | 'portal';
  readonly batch: number;
  readonly settled: Promise<void>;
  settle(): void;
  /** A Parse the gateway sent on its own: its ParseComplete is not relayed. */
  readonly ownParse: boolean;
}

interface PendingCompletion {
  readonly statementId: string;
  readonly startedAt: number;
  /** Which ReadyForQuery closes its batch (simple Query, Sync or FunctionCall). */
  readonly batch: number;
  /** Order among the messages sent to the target, to tell its RowDescription from a Describe's. */
  seq: number;
  rows: number;
  /** The masking profile its decision named; undefined: its result is neither masked nor recorded. */
  readonly masking?: MaskingProfile;
  /** The statement text, for the lineage of masked columns. */
  readonly text?: string;
  /** Its lineage through the target's views, worked out before it was sent (the text alone does not see through views). */
  readonly lineage?: StatementLineage;
  /** An Execute's portal: its description arrives with a Describe reply, possibly after the Execute was sent. */
  readonly portal?: Portal;
  columns?: ResultColumn[];
  plan?: ResultMaskPlan;
  /** Why its result cannot be masked safely: rows are dropped and it ends in an error. */
  refused?: string;
  copyRedactor?: ReturnType<MaskingProfile['createStreamRedactor']>;
  readonly hits: Record<string, number>;
  /** Masked rows kept for the audit trail, up to the recorded-rows cap; `chunk` counts the events written. */
  recorded: (string | null)[][];
  chunk: number;
}

/** A portal as the client bound it; a later Bind of the same name makes a new one. */
interface Portal {
  readonly entry: PreparedStatement | undefined;
  readonly parameterCount: number;
  readonly resultFormats: readonly number[];
  readonly parameters: readonly (Buffer | null)[];
  readonly parameterFormats: readonly number[];
  /** From a Describe of the portal, once its reply came. */
  description?: ResultColumn[];
  describing?: boolean;
}

/** A Describe sent to the target, until its RowDescription or NoData. */
interface DescribeInFlight {
  readonly seq: number;
  readonly batch: number;
  /** The gateway's own Describe (to learn the columns it must mask): its reply is not relayed. */
  readonly swallow: boolean;
  readonly portal?: Portal;
  readonly statement?: PreparedStatement;
}

type Phase = 'startup' | 'authenticating' | 'relaying' | 'closed';

type TracePart = Pick<StatementContext, 'traceId' | 'trace'> & { readonly traceProblem?: string };
/** What the session knows of a statement before identity and target are added. */
type StatementPartial = Omit<StatementContext, 'identity' | 'target'> & { readonly traceProblem?: string };

const SQLSTATE_INSUFFICIENT_PRIVILEGE = '42501';
const EMPTY = Buffer.alloc(0);
/** The replies whose bodies the session reads; rows and COPY data are kept only when masked. */
const KEPT_BODIES = new Set<number>([BackendType.CommandComplete, BackendType.ErrorResponse, BackendType.NoticeResponse, BackendType.ReadyForQuery, BackendType.RowDescription]);
/** Rows per statement_result event. */
const RECORDED_ROWS_PER_CHUNK = 50;

/**
 * One client connection: start-up and authentication, brokered login to the target, then the
 * relay in which every statement is decided before it is forwarded.
 *
 * Client messages are handled strictly in order through one promise chain, so a statement waiting
 * for its decision (or for a reviewer) holds back only the messages behind it on this
 * connection. The target's replies are relayed as raw bytes; the session only frames them to
 * see completions and the transaction status.
 */
export class ClientSession {
  readonly id = randomUUID();
  private phase: Phase = 'startup';
  private socket: net.Socket;
  private readonly parser: FrontendParser;
  private readonly gate: CommandGate;
  private upstream: UpstreamConnection | undefined;
  private readonly upstreamFramer: BackendFramer;
  private identity: VerifiedIdentity | undefined;
  private startup: StartupMessage | undefined;
  private targetName = '';
  private targetLabels: Readonly<Record<string, string>> = {};
  private leaseId = '';
  private chain: Promise<void> = Promise.resolve();
  private queued = 0;
  private endReason = 'client disconnected';
  /** The target's own FATAL, already relayed: the client has its reason, and gets no second one. */
  private targetFatal: string | undefined;
  private startupTimer: NodeJS.Timeout | undefined;
  /** Aborted when the session closes: withdraws a statement held for review. */
  private readonly closing = new AbortController();
  /** Messages of the gateway's own (NoticeResponse) waiting for the target's replies to reach a message boundary. */
  private readonly injections: Buffer[] = [];
  /** The default trace for statements without their own (SET tracegate.trace_id). */
  private sessionTraceId = '';
  /** Traces already checked in this session, by id: a session default is resolved once. */
  private readonly resolvedTraces = new Map<string, TraceFeatures>();
  /** The transaction status of the target's last ReadyForQuery: I, T or E. */
  private transactionStatus: 'I' | 'T' | 'E' = 'I';
  private readonly idleWaiters: (() => void)[] = [];
  /** Cursors and SQL-prepared queries of this session, whose later FETCH or EXECUTE results are masked by their query's lineage. */
  private readonly namedQueries = new NamedQueries();
  /** The target's views as this session sees them (its own CREATE VIEWs included). */
  private views: SessionViews | undefined;
  /** This session created, changed or dropped a view: once its transaction ends, the catalog's reading is stale. */
  private viewsChanging = false;

  /**
   * Prepared statements by name ('' unnamed) as the target has them — changed only when the
   * target confirms a Parse (ParseComplete) or Close (CloseComplete) — with the decision made when
   * they were parsed (a later Bind decides again). A denied one is replaced upstream by the
   * denial statement, so its Binds carry no parameters.
   */
  private readonly prepared = new Map<string, PreparedStatement>();
  /** Parses and Closes sent, in order, not yet answered. */
  private readonly statementChanges: StatementChange[] = [];
  /** Portals by name, with the statement each was bound to (undefined: one the gateway never saw parsed). */
  private readonly portals = new Map<string, Portal>();
  private readonly describes: DescribeInFlight[] = [];
  /** Messages sent to the target so far; see PendingCompletion.seq. */
  private sent = 0;
  /** The masking profile of the latest statement: errors and notices outside any statement are redacted with it. */
  private lastMasking: MaskingProfile | undefined;
  private readonly pending: PendingCompletion[] = [];
  /** Batches whose ReadyForQuery is still due, in order. */
  private readonly openBatches: number[] = [];
  private batch = 0;

  constructor(
    socket: net.Socket,
    private readonly deps: SessionDependencies,
    private readonly options: SessionOptions,
  ) {
    this.socket = socket;
    this.gate = new CommandGate(deps, options.maskingFallbackProfile ?? '', 'statement');
    this.parser = new FrontendParser({ maxMessageLength: options.maxMessageLength });
    // Only these bodies are read (observe); rows and COPY data pass through unbuffered.
    const startupTimeoutMs = options.startupTimeoutMs ?? DEFAULT_STARTUP_TIMEOUT_MS;
    this.startupTimer = setTimeout(() => {
      this.endReason = 'start-up timed out';
      this.fatal({
        severity: 'FATAL',
        sqlstate: '57014',
        message: `canceling authentication due to timeout: start-up and the password must arrive within ${startupTimeoutMs} ms of connecting`,
      });
    }, startupTimeoutMs);
    this.startupTimer.unref();
    this.upstreamFramer = new BackendFramer(options.maxMessageLength, (type) => KEPT_BODIES.has(type) || this.mayRewrite(type));
    this.attachClient(socket);
  }

  get upstreamKey(): { processId: number; secretKey: Buffer } | undefined {
    return this.upstream ? { processId: this.upstream.processId, secretKey: this.upstream.secretKey } : undefined;
  }

  get upstreamAddress(): { host: string; port: number } | undefined {
    const s = this.upstream?.socket;
    return s?.remoteAddress && s.remotePort ? { host: s.remoteAddress, port: s.remotePort } : undefined;
  }

  /** Ends the session from the gateway's side (shutdown): FATAL 57P01 as PostgreSQL does. */
  terminate(reason: string): void {
    if (this.phase === 'closed') return;
    this.endReason = reason;
    this.fatal({ severity: 'FATAL', sqlstate: '57P01', message: `terminating connection: ${reason}` });
  }

  private get clientAddress(): string {
    return `${this.socket.remoteAddress ?? '?'}:${this.socket.remotePort ?? '?'}`;
  }

  private attachClient(socket: net.Socket): void {
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onClientData(chunk));
    socket.on('error', (error) => {
      this.deps.logger.debug({ session: this.id, err: error.message }, 'client socket error');
      this.close();
    });
    socket.on('close', () => this.close());
  }

  private onClientData(chunk: Buffer): void {
    const violation = this.parser.parse(chunk, (message) => this.onClientMessage(message));
    if (violation) this.onViolation(violation);
  }

  private onViolation(violation: ProtocolViolation): void {
    this.deps.logger.info({ session: this.id, client: this.clientAddress, violation: violation.message }, 'protocol violation from client');
    this.endReason = `protocol violation: ${violation.message}`;
    this.fatal({ severity: 'FATAL', sqlstate: violation.sqlstate, message: violation.message });
  }

  private onClientMessage(message: FrontendMessage): void {
    if (this.phase === 'closed') return;
    switch (message.type) {
      case 'sslRequest':
        if (this.options.tls) {
          this.socket.write(serializeBackend.encryptionAnswer('S'));
          this.upgradeToTls();
        } else {
          this.socket.write(serializeBackend.encryptionAnswer('N'));
        }
        return;
      case 'gssEncRequest':
        this.socket.write(serializeBackend.encryptionAnswer('N'));
        return;
      case 'cancelRequest':
        clearTimeout(this.startupTimer);
        void this.deps.cancel(message.processId, message.secretKey).finally(() => this.socket.destroy());
        this.phase = 'closed';
        return;
      case 'startupMessage':
        this.onStartup(message);
        return;
      case 'passwordMessage':
        if (this.phase !== 'authenticating') return this.protocolError('a password message arrived outside authentication');
        this.phase = 'relaying'; // no further 'p' is accepted as a password
        clearTimeout(this.startupTimer);
        this.enqueue(() => this.authenticate(message.password));
        return;
      case 'saslInitialResponse':
      case 'saslResponse':
      case 'gssResponse':
        return this.protocolError('the gateway asked for a password; SASL and GSS responses are not expected');
      default:
        if (!this.upstream && this.phase !== 'relaying') return this.protocolError(`message '${message.type}' arrived before authentication completed`);
        this.enqueue(() => this.relay(message));
    }
  }

  private upgradeToTls(): void {
    const plain = this.socket;
    plain.removeAllListeners('data');
    plain.removeAllListeners('close');
    plain.removeAllListeners('error');
    // Bytes sent after SSLRequest but before the handshake would be plaintext injected into the
    // encrypted session (CVE-2021-23214): the parser refuses them; here we start a fresh stream.
    const secure = new tls.TLSSocket(plain, { isServer: true, secureContext: this.options.tls });
    this.socket = secure;
    this.attachClient(secure);
    secure.on('secureConnect', () => undefined);
  }

  private onStartup(message: StartupMessage): void {
    if (message.protocolVersion.major !== 3) return this.protocolError(`protocol ${message.protocolVersion.major}.${message.protocolVersion.minor} is not supported`, '0A000');
    if (this.options.requireTls && !(this.socket instanceof tls.TLSSocket)) {
      return this.fatal({
        severity: 'FATAL',
        sqlstate: '28000',
        message: 'tracegate requires an encrypted connection: your API key is the password',
        hint: 'connect with sslmode=require',
      });
    }
    this.startup = message;
    const user = message.parameters.get('user') ?? '';
    this.targetName = message.parameters.get('database') ?? user;
    if (!user) return this.fatal({ severity: 'FATAL', sqlstate: '28000', message: 'no user name given: connect as your tracegate identity name' });
    if (message.protocolVersion.minor > 0) {
      // We speak 3.0 to clients (4-byte cancel keys); newer minors are negotiated down.
      const unrecognised = [...message.parameters.keys()].filter((k) => k.startsWith('_pq_.'));
      this.socket.write(serializeBackend.negotiateProtocolVersion(0, unrecognised));
    }
    this.phase = 'authenticating';
    this.socket.write(serializeBackend.authenticationCleartextPassword());
  }

  private async authenticate(password: string): Promise<void> {
    const user = this.startup!.parameters.get('user')!;
    let identity: VerifiedIdentity | undefined;
    try {
      identity = await this.deps.authenticator.authenticate(user, password);
    } catch (error) {
      this.deps.logger.error({ session: this.id, err: (error as Error).message }, 'authentication service unavailable');
      return this.fatal({ severity: 'FATAL', sqlstate: '08006', message: 'tracegate could not check your API key right now; try again shortly' });
    }
    if (!identity) {
      return this.fatal({
        severity: 'FATAL',
        sqlstate: '28P01',
        message: `password authentication failed for tracegate identity "${user}"`,
        hint: 'the password is your API key: check it, or create one with `tracegate key create`',
      });
    }
    this.identity = identity;
    let lease;
    try {
      lease = await this.deps.broker.checkout(this.targetName, this.id, identity);
    } catch (error) {
      return this.fatal({ severity: 'FATAL', sqlstate: '3D000', message: (error as Error).message });
    }
    this.leaseId = lease.leaseId;
    this.targetLabels = lease.labels ?? {};
    if (this.deps.views) this.views = new SessionViews(this.deps.views, this.targetName, lease.endpoint);
    try {
      this.upstream = await loginToTarget(lease.endpoint, this.startup!.parameters, { timeoutMs: this.options.upstreamTimeoutMs, maxMessageLength: this.options.maxMessageLength });
    } catch (error) {
      const message = error instanceof UpstreamLoginError ? error.message : `the gateway could not log in to target '${this.targetName}'`;
      this.deps.logger.warn({ session: this.id, target: this.targetName, detail: (error as UpstreamLoginError).detail }, message);
      return this.fatal({ severity: 'FATAL', sqlstate: '08001', message });
    }
    if (this.phase === 'closed') {
      this.upstream.socket.destroy();
      return;
    }
    try {
      await this.deps.recorder.sessionStarted({
        sessionId: this.id,
        identity,
        target: this.targetName,
        clientAddress: this.clientAddress,
        applicationName: this.startup!.parameters.get('application_name') ?? '',
        leaseId: lease.leaseId,
      });
    } catch (error) {
      return this.fatal({ severity: 'FATAL', sqlstate: '58000', message: `the session could not be recorded, so it was not opened: ${(error as Error).message}` });
    }
    const key = this.deps.register(this);
    const upstream = this.upstream.socket;
    upstream.on('data', (chunk: Buffer) => this.onUpstreamData(chunk));
    upstream.on('error', (error) => {
      this.deps.logger.warn({ session: this.id, err: error.message }, 'target connection error');
    });
    upstream.on('close', () => {
      if (this.phase !== 'closed' && this.targetFatal !== undefined) {
        // As PostgreSQL itself: one FATAL, then the connection closes.
        this.endReason = `the target ended the session: ${this.targetFatal}`;
        this.close();
      } else if (this.phase !== 'closed') {
        this.endReason = 'the target closed the connection';
        this.fatal({ severity: 'FATAL', sqlstate: '08006', message: `target '${this.targetName}' closed the connection` });
      }
    });
    const greeting = [serializeBackend.authenticationOk()];
    for (const [name, value] of this.upstream.parameters) greeting.push(serializeBackend.parameterStatus(name, value));
    greeting.push(serializeBackend.backendKeyData(key.processId, key.secretKey), serializeBackend.readyForQuery('I'));
    this.socket.write(Buffer.concat(greeting));
    if (this.upstream.afterLogin.length > 0) this.onUpstreamData(this.upstream.afterLogin);
    upstream.resume();
    this.deps.logger.info({ session: this.id, identity: identity.name, target: this.targetName, client: this.clientAddress }, 'session started');
  }

  private enqueue(step: () => Promise<void>): void {
    this.queued += 1;
    // Back-pressure: a client pipelining faster than decisions come stops being read.
    if (this.queued > 1000) this.socket.pause();
    this.chain = this.chain
      .then(step)
      .catch((error: unknown) => {
        this.deps.logger.error({ session: this.id, err: error instanceof Error ? error.stack : String(error) }, 'session step failed');
        this.fatal({ severity: 'FATAL', sqlstate: 'XX000', message: `tracegate failed to handle the message: ${(error as Error).message}` });
      })
      .finally(() => {
        this.queued -= 1;
        if (this.queued < 100 && this.socket.isPaused()) this.socket.resume();
      });
  }

  private sendUpstream(message: Parameters<typeof serializeFrontend>[0]): void {
    if (this.phase === 'closed' || !this.upstream) return;
    const socket = this.upstream.socket;
    // A driver's Bind, Execute and Sync arrive together and are relayed one by one: corked until
    // the work queued now has run, they leave in one write (one packet, one wake-up of the
    // target's backend) instead of three.
    if (!socket.writableCorked) {
      socket.cork();
      process.nextTick(() => socket.uncork());
    }
    socket.write(serializeFrontend(message));
  }

  private async relay(message: FrontendMessage): Promise<void> {
    if (this.phase === 'closed') return;
    switch (message.type) {
      case 'query':
        return this.relayQuery(message.text);
      case 'parse':
        return this.relayParse(message);
      case 'bind':
        return this.relayBind(message);
      case 'execute':
        return this.relayExecute(message.portal, message);
      case 'sync':
        this.closeBatch();
        this.sendUpstream(message);
        return;
      case 'functionCall': {
        // The fast-path interface calls any function by OID, out of sight of SQL analysis: it
        // runs only where a policy rule allows it (the text policy sees names the OID, and is
        // never readable as SQL, so the opaque-statement rule refuses it unless one does). A
        // refusal leaves the transaction as an error there would.
        const partial: StatementPartial = { text: `/* FunctionCall ${message.functionOid} */`, fingerprint: '', parsed: false, inMultiStatement: false, protocol: 'function-call' };
        const decision = await this.decide(partial);
        const statementId = randomUUID();
        await this.record(statementId, this.context({ ...partial, text: `FunctionCall oid ${message.functionOid}` }), decision, message.arguments.length);
        this.pending.push(this.pendingEntry(statementId, decision, undefined, undefined));
        this.closeBatch();
        if (decision.effect === 'allow') this.sendUpstream(message);
        else this.sendUpstream({ type: 'query', text: denialStatement(SQLSTATE_INSUFFICIENT_PRIVILEGE, decision.reason) });
        return;
      }
      case 'terminate':
        this.endReason = 'client terminated';
        this.sendUpstream(message);
        this.close();
        return;
      case 'describe': {
        const portal = message.target === 'P' ? this.portals.get(message.name) : undefined;
        const statement = message.target === 'S' ? (await this.statementForBind(message.name)).entry : undefined;
        if (portal) portal.describing = true;
        if (statement?.shape) statement.shape.describing = true;
        this.describes.push({ seq: this.nextSeq(), batch: this.batch, swallow: false, ...(portal ? { portal } : {}), ...(statement ? { statement } : {}) });
        this.sendUpstream(message);
        return;
      }
      case 'close':
        if (message.target === 'P') this.portals.delete(message.name);
        this.expectStatementChange(message.target === 'S' ? 'statement' : 'portal', message.name, undefined);
        this.sendUpstream(message);
        return;
      default:
        this.sendUpstream(message as Parameters<typeof serializeFrontend>[0]);
    }
  }

  private closeBatch(): void {
    this.openBatches.push(this.batch);
    this.batch += 1;
  }

  private expectStatementChange(kind: StatementChange['kind'], name: string, entry: PreparedStatement | undefined, ownParse = false): void {
    let settle: () => void = () => undefined;
    const settled = new Promise<void>((resolve) => (settle = resolve));
    this.statementChanges.push({ kind, name, entry, batch: this.batch, settled, settle, ownParse });
  }

  /**
   * The statement a Bind sent now will find on the target. A Parse or Close of the name earlier in
   * this batch decides it (should that one fail, the Bind is skipped with it). Otherwise one still
   * unanswered from an earlier batch is waited for: that batch's Sync has gone, so its answer is
   * on the way, and whether it took effect is known only then.
   */
  private async statementForBind(name: string): Promise<{ entry: PreparedStatement | undefined; parsedInThisBatch: boolean }> {
    for (let i = this.statementChanges.length - 1; i >= 0; i -= 1) {
      const change = this.statementChanges[i]!;
      if (change.kind !== 'statement' || change.name !== name) continue;
      if (change.batch === this.batch) return { entry: change.entry, parsedInThisBatch: true };
      await change.settled;
      break;
    }
    return { entry: this.prepared.get(name), parsedInThisBatch: false };
  }

  private context(partial: StatementPartial): StatementContext {
    const { traceProblem: _problem, ...rest } = partial;
    return { identity: this.identity!, target: this.targetName, targetLabels: this.targetLabels, ...rest };
  }

  /** Records a statement's request and decision, its text masked with the statement's profile: audit data is stored only after masking. */
  private record(statementId: string, context: StatementContext, decision: StatementDecision, parameterCount: number, bound?: Portal): Promise<void> {
    const masking = this.profileFor(decision);
    const text = masking ? masking.redactText(context.text).text : context.text;
    // Parameter values are recorded only once masked: text ones through the profile's detectors,
    // binary ones (which no detector can read) by their size alone. Without a profile, only their count.
    const parameters = masking && bound ? bound.parameters.map((value, i) => parameterForAudit(value, formatOf(bound.parameterFormats, i), masking)) : undefined;
    const recorded = text === context.text && !parameters ? context : { ...context, text, ...(parameters ? { parameters } : {}) };
    return this.deps.recorder.statementRequested(this.id, statementId, recorded, decision, parameterCount);
  }

  /** The profile that masks what is recorded of a statement: its decision's, else the fallback (a refused statement's text is masked too). */
  private profileFor(decision: StatementDecision): MaskingProfile | undefined {
    return this.gate.profileFor(decision);
  }

  /** The gateway's own refusal (a trace it cannot accept, a setting it keeps): no policy is asked. */
  private refusal(reason: string): StatementDecision {
    return { effect: 'deny', rule: 'tracegate', reason, policyVersion: '', maskingProfile: '' };
  }

  private async decide(partial: StatementPartial): Promise<StatementDecision> {
    if (partial.traceProblem) return this.refusal(partial.traceProblem);
    if (partial.protocol === 'simple' && namesTraceSetting(partial.text)) {
      return this.refusal('tracegate.trace_id can only be set for the session, with SET tracegate.trace_id = \'…\' as a query of its own');
    }
    // A statement held for review waits here, in this session only: the promise chain holds back
    // the messages behind it on this connection, and no other session notices. The client hears
    // the request id at once in a NOTICE; the statement then runs, or fails with the reason,
    // exactly where it stood.
    return this.gate.decide(this.context(partial), {
      sessionId: this.id,
      signal: this.closing.signal,
      onHeld: (requestId, terms) =>
        this.notify({
          severity: 'NOTICE',
          sqlstate: '00000',
          message: `tracegate: this statement is held for approval (request ${requestId}); it runs when ${awaitedReviewers(terms)}`,
          hint: `reviewers: tracegate approvals approve ${requestId}`,
        }),
    });
  }

  /**
   * Sends a NoticeResponse of the gateway's own. The target's replies are relayed as raw chunks,
   * which may end inside a message: the notice then waits for the next message boundary, so it
   * never lands inside one of the target's messages.
   */
  private notify(fields: NoticeFields): void {
    if (this.phase === 'closed') return;
    const notice = serializeBackend.noticeResponse(fields);
    if (this.upstreamFramer.atMessageBoundary) this.socket.write(notice);
    else this.injections.push(notice);
  }

  private async relayQuery(query: string): Promise<void> {
    const blanked = blankTraceComments(query);
    const text = blanked.text;
    const statements = splitStatements(text);
    const settings = statements.map((s) => sessionTraceSetting(s.text));
    if (settings.some(Boolean)) {
      if (settings.every(Boolean)) return this.setSessionTrace(settings.map((setting) => setting!.traceId));
      return this.refuseQuery('0A000', 'SET tracegate.trace_id must be sent as a query of its own, not together with other statements');
    }
    const multi = statements.length > 1;
    const partials = await Promise.all(
      statements.map(async (s): Promise<StatementPartial> => ({
        text: s.text,
        fingerprint: s.fingerprint,
        parsed: s.parsed,
        inMultiStatement: multi,
        protocol: 'simple',
        ...(await this.traceOf(blanked, s, statements)),
      })),
    );
    const decisions = await Promise.all(partials.map((p) => this.decide(p)));
    const ids = statements.map(() => randomUUID());
    // Strict durability: every statement's request and decision is in the log before any of it runs.
    await Promise.all(partials.map((p, i) => this.record(ids[i]!, this.context(p), decisions[i]!, 0)));
    const denied = decisions.some((d) => d.effect !== 'allow');
    const now = Date.now();
    // In order: a view an earlier statement of the query defines is seen by the later ones.
    const lineages: (StatementLineage | undefined)[] = [];
    for (const [i, p] of partials.entries()) lineages.push(await this.lineageThroughViews(p.text, decisions[i]!));
    ids.forEach((id, i) => this.pending.push(this.pendingEntry(id, decisions[i]!, partials[i]!.text, undefined, now, lineages[i])));
    this.closeBatch();
    if (!denied) {
      this.sendUpstream({ type: 'query', text });
      return;
    }
    const rewritten = statements.map((s, i) => (decisions[i]!.effect === 'allow' ? s.text : denialStatement(SQLSTATE_INSUFFICIENT_PRIVILEGE, decisions[i]!.reason))).join(';\n');
    this.sendUpstream({ type: 'query', text: rewritten });
  }

  /**
   * The trace a statement carries: its own comment, else the session's default. Resolved (and an
   * inline one stored) before policy decides, since policy may act on its features. A trace that
   * cannot be accepted is carried as `traceProblem`, and the statement is refused with it.
   */
  private async traceOf(blanked: BlankedQuery, statement: SqlStatement, statements: readonly SqlStatement[]): Promise<TracePart> {
    if (blanked.problem) return { traceProblem: blanked.problem };
    const own = blanked.comments.find((c) => ownerOf(c.offset, statements) === statement);
    const attachment = own?.attachment ?? (this.sessionTraceId ? { traceId: this.sessionTraceId } : undefined);
    return attachment ? this.attach(attachment) : {};
  }

  /** Checks an attached trace id (once per session) or stores an inline trace, as the trace service answers. */
  private async attach(attachment: TraceAttachment): Promise<TracePart> {
    const traces = this.deps.traces;
    if (!traces) return { traceProblem: 'this gateway records no reasoning traces (no trace service is configured); remove the tracegate comment' };
    try {
      if (attachment.inlineTrace !== undefined) {
        const { traceId, features } = await traces.submitInline(attachment.inlineTrace, this.identity!, { sessionId: this.id, target: this.targetName });
        return { traceId, trace: features };
      }
      const traceId = attachment.traceId!;
      let features = this.resolvedTraces.get(traceId);
      if (!features) {
        features = await traces.resolve(traceId, this.identity!, { sessionId: this.id, target: this.targetName });
        this.resolvedTraces.set(traceId, features);
      }
      return { traceId, trace: features };
    } catch (error) {
      if (error instanceof TraceRefusal) return { traceProblem: error.message };
      this.deps.logger.warn({ session: this.id, err: (error as Error).message }, 'trace service unavailable');
      return { traceProblem: 'the trace service could not be reached to check the attached trace; try again shortly' };
    }
  }

  /** `SET tracegate.trace_id`: kept by the gateway, answered as PostgreSQL answers a SET, never forwarded. */
  private async setSessionTrace(values: readonly string[]): Promise<void> {
    for (const value of values) {
      if (value && this.deps.traces) {
        const problem = await this.attach({ traceId: value });
        if (problem.traceProblem) return this.refuseQuery('42501', problem.traceProblem);
      }
      this.sessionTraceId = value;
    }
    await this.upstreamIdle();
    if (this.phase === 'closed') return;
    this.socket.write(Buffer.concat([...values.map(() => serializeBackend.commandComplete('SET')), serializeBackend.readyForQuery(this.transactionStatus)]));
  }

  /** Fails a whole simple Query where it stands, through the target, so the transaction reacts as to any error. */
  private refuseQuery(sqlstate: string, message: string): void {
    this.closeBatch();
    this.sendUpstream({ type: 'query', text: denialStatement(sqlstate, message) });
  }

  /** Resolves once the target has answered everything sent to it (its last ReadyForQuery was relayed). */
  private upstreamIdle(): Promise<void> {
    if (this.openBatches.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private async relayParse(message: ParseMessage): Promise<void> {
    const blanked = blankTraceComments(message.text);
    const text = blanked.text;
    const statements = splitStatements(text);
    const [statement] = statements;
    if (!statement) {
      // Only whitespace, comments or semicolons: nothing runs, and the target answers its
      // executions with EmptyQueryResponse, as it does for an empty simple Query.
      const context = this.context({ text, fingerprint: '', parsed: true, inMultiStatement: false, protocol: 'extended' });
      this.expectStatementChange('statement', message.statement, { context, decision: undefined, deniedStatementId: undefined });
      this.sendUpstream({ ...message, text });
      return;
    }
    const partial: StatementPartial = {
      text: statement.text,
      fingerprint: statement.fingerprint,
      parsed: statement.parsed,
      inMultiStatement: false,
      protocol: 'extended',
      ...(await this.traceOf(blanked, statement, statements)),
    };
    const context = this.context(partial);
    const decision = namesTraceSetting(partial.text)
      ? this.refusal('tracegate.trace_id is set with a simple query (SET tracegate.trace_id = \'…\') or attached as a comment; it cannot be prepared')
      : await this.decide(partial);
    if (decision.effect === 'allow') {
      // Recorded when it runs: each Execute is one execution, with its own parameters.
      this.expectStatementChange('statement', message.statement, { context, decision, deniedStatementId: undefined, shape: {} });
      this.sendUpstream({ ...message, text });
      return;
    }
    // A refusal is recorded now, whether or not the client ever executes it.
    const deniedStatementId = randomUUID();
    await this.record(deniedStatementId, context, decision, message.parameterTypes.length);
    this.expectStatementChange('statement', message.statement, { context, decision, deniedStatementId });
    this.sendUpstream({ type: 'parse', statement: message.statement, text: denialStatement(SQLSTATE_INSUFFICIENT_PRIVILEGE, decision.reason), parameterTypes: [] });
  }

  private async relayBind(message: BindMessage): Promise<void> {
    const found = await this.statementForBind(message.statement);
    let entry = found.entry;
    // No Parse of this name took effect: it does not exist (the target says so), or it was made
    // with SQL PREPARE, out of sight of the Parse decisions — then it runs only as EXECUTE would.
    if (!entry && message.statement !== '') entry = await this.decideSqlPrepared(message.statement, message.parameters.length);
    // Parsed in this batch, its decision is fresh (the unnamed statement of most drivers' queries).
    else if (entry?.decision && !entry.deniedStatementId && !found.parsedInThisBatch) entry = await this.decideAtBind(entry, message.parameters.length);
    this.portals.set(message.portal, { entry, parameterCount: message.parameters.length, resultFormats: message.resultFormats, parameters: message.parameters, parameterFormats: message.parameterFormats });
    if (entry?.refusedAtBind && entry.deniedStatementId) {
      // Nothing of the refusal is on the target yet: the denial statement is parsed as the
      // unnamed statement just ahead of this Bind (its ParseComplete kept from the client, who
      // did not send that Parse), and the portal bound to it, so executing it raises 42501 with
      // the policy's reason where the statement stood, and the batch fails as after any error.
      // The client's own named statement on the target is untouched.
      this.expectStatementChange('statement', '', { context: entry.context, decision: entry.decision, deniedStatementId: entry.deniedStatementId }, true);
      this.sendUpstream({ type: 'parse', statement: '', text: denialStatement(SQLSTATE_INSUFFICIENT_PRIVILEGE, entry.decision?.reason ?? 'refused by policy'), parameterTypes: [] });
      this.sendUpstream({ ...message, statement: '', parameterFormats: [], parameters: [], resultFormats: [] });
    } else if (entry?.deniedStatementId) {
      // The denial statement takes no parameters; executing it raises the policy's error.
      this.sendUpstream({ ...message, parameterFormats: [], parameters: [], resultFormats: [] });
    } else {
      this.sendUpstream(message);
    }
  }

  private async decideSqlPrepared(name: string, parameterCount: number): Promise<PreparedStatement> {
    const text = `EXECUTE "${name.replaceAll('"', '""')}"`;
    const [statement] = splitStatements(text);
    const context = this.context({ text, fingerprint: statement?.fingerprint ?? '', parsed: statement?.parsed ?? false, inMultiStatement: false, protocol: 'extended' });
    return this.decideAtBind({ context, decision: undefined, deniedStatementId: undefined, preparedInSql: true }, parameterCount);
  }

  /**
   * A statement allowed when parsed is decided again at each Bind, so a policy change reaches
   * statements prepared before it (pools keep them for hours); the decision cache answers that
   * without a round trip while the policy version is unchanged. A refusal then is recorded and
   * the Bind is kept from the target. (One refused at Parse stays refused: the target holds the
   * denial statement under its name.)
   */
  private async decideAtBind(entry: PreparedStatement, parameterCount: number): Promise<PreparedStatement> {
    const decision = await this.decide(entry.context);
    if (decision.effect === 'allow') return { ...entry, decision };
    const deniedStatementId = randomUUID();
    await this.record(deniedStatementId, entry.context, decision, parameterCount);
    return { ...entry, decision, deniedStatementId, refusedAtBind: true };
  }

  private async relayExecute(portalName: string, message: FrontendMessage & { type: 'execute' }): Promise<void> {
    const portal = this.portals.get(portalName);
    const prepared = portal?.entry;
    let statementId = '';
    if (prepared?.deniedStatementId) {
      statementId = prepared.deniedStatementId;
    } else if (prepared?.decision && portal) {
      // Strict durability: this execution is in the log before the target runs it.
      statementId = randomUUID();
      await this.record(statementId, prepared.context, prepared.decision, portal.parameterCount, portal);
    }
    const decision = prepared?.deniedStatementId ? undefined : prepared?.decision;
    const lineage = prepared ? await this.lineageThroughViews(prepared.context.text, decision) : undefined;
    const entry = this.pendingEntry(statementId, decision, prepared?.context.text, portal, Date.now(), lineage);
    if (entry.masking && portal && !portal.describing && !prepared?.shape?.describing) {
      // Masking needs the result's columns, and the client asked for none: the gateway asks,
      // and keeps the answer to itself.
      portal.describing = true;
      // Sent ahead of the Execute, so its reply comes first.
      this.describes.push({ seq: entry.seq, batch: this.batch, swallow: true, portal });
      entry.seq = this.nextSeq();
      this.sendUpstream({ type: 'describe', target: 'P', name: portalName });
    }
    // Without a known portal the target answers with its own error; nothing runs.
    this.pending.push(entry);
    this.sendUpstream(message);
  }

  private nextSeq(): number {
    this.sent += 1;
    return this.sent;
  }

  /**
   * The lineage through the target's views of a statement about to run, when its result is
   * masked; notes a change to views the statement makes. The catalog's reading is shared and
   * cached, so this is a lookup, except on first use and when the statement names a relation the
   * reading does not know.
   */
  private async lineageThroughViews(text: string, decision: StatementDecision | undefined): Promise<StatementLineage | undefined> {
    if (!this.views || decision?.effect !== 'allow') return undefined;
    this.views.noteStatement(text);
    return decision.maskingProfile ? this.views.lineage(text) : undefined;
  }

  /** What the gateway tracks of a statement sent to the target until it completes. */
  private pendingEntry(statementId: string, decision: StatementDecision | undefined, text: string | undefined, portal: Portal | undefined, startedAt = Date.now(), lineage?: StatementLineage): PendingCompletion {
    const masking = decision?.effect === 'allow' && decision.maskingProfile ? this.deps.masking?.profile(decision.maskingProfile) : undefined;
    if (masking) this.lastMasking = masking;
    if (masking && text !== undefined) this.namedQueries.remember(text, this.views?.views);
    return {
      statementId,
      startedAt,
      batch: this.batch,
      seq: this.nextSeq(),
      rows: 0,
      hits: {},
      recorded: [],
      chunk: 0,
      ...(masking ? { masking } : {}),
      ...(text !== undefined ? { text } : {}),
      ...(lineage ? { lineage } : {}),
      ...(portal ? { portal } : {}),
    };
  }

  private onUpstreamData(chunk: Buffer): void {
    if (this.phase === 'closed') return;
    // The target's bytes are relayed as they came, except messages the gateway rewrites (masked
    // rows, redacted errors) or keeps to itself (its own Describes), spliced in at their offsets.
    const out: Buffer[] = [];
    let cursor = 0;
    try {
      this.upstreamFramer.push(chunk, (frame) => {
        const replacement = this.observe(frame, chunk);
        if (replacement === undefined && !frame.withheld) return;
        if (frame.start > cursor) out.push(chunk.subarray(cursor, frame.start));
        out.push(replacement ?? backendMessage(frame.type, frame.body));
        cursor = frame.end;
      });
      const pending = this.upstreamFramer.pending;
      if (pending && (pending.withheld || (pending.start >= 0 && this.mayRewrite(pending.type)))) {
        if (pending.start > cursor) out.push(chunk.subarray(cursor, pending.start));
        this.upstreamFramer.withholdPending();
      } else if (cursor < chunk.length) {
        out.push(cursor === 0 ? chunk : chunk.subarray(cursor));
      }
    } catch (error) {
      this.endReason = (error as Error).message;
      this.fatal({ severity: 'FATAL', sqlstate: '08P01', message: (error as Error).message });
      return;
    }
    if (this.injections.length > 0 && this.upstreamFramer.atMessageBoundary) out.push(...this.injections.splice(0));
    let flowing = true;
    if (out.length === 1) flowing = this.socket.write(out[0]!);
    else if (out.length > 1) flowing = this.socket.write(Buffer.concat(out));
    if (!flowing) {
      this.upstream?.socket.pause();
      this.socket.once('drain', () => this.upstream?.socket.resume());
    }
  }

  /**
   * Whether a message of this type, now arriving, may be rewritten: its body must then be kept,
   * and, should it span chunks, its first bytes withheld until it is complete.
   */
  private mayRewrite(type: number): boolean {
    switch (type) {
      case BackendType.DataRow: {
        const head = this.pending[0];
        return head?.masking !== undefined;
      }
      case BackendType.CopyData:
        return this.pending[0]?.copyRedactor !== undefined;
      case BackendType.ErrorResponse:
      case BackendType.NoticeResponse:
        return (this.pending[0]?.masking ?? this.lastMasking) !== undefined;
      case BackendType.ParseComplete:
        // The reply to a Parse of the gateway's own is not relayed.
        return this.statementChanges[0]?.ownParse === true;
      case BackendType.RowDescription:
      case BackendType.NoData:
      case BackendType.CommandComplete:
      case BackendType.PortalSuspended:
        // A Describe of the gateway's own is not relayed; a refused result ends in an error instead.
        return this.describes.length > 0 || this.pending[0]?.refused !== undefined;
      default:
        return false;
    }
  }

  /** The whole message of a frame: a view of the chunk when it lies in it, else rebuilt. */
  private static messageOf(frame: BackendFrame, chunk: Buffer): Buffer {
    return frame.start >= 0 && !frame.withheld ? chunk.subarray(frame.start, frame.end) : backendMessage(frame.type, frame.body);
  }

  /** The columns of a statement's result, once known: the simple Query's, or its portal's. */
  private columnsOf(entry: PendingCompletion): ResultColumn[] | undefined {
    if (entry.columns) return entry.columns;
    const portal = entry.portal;
    if (!portal) return undefined;
    if (portal.description) return portal.description;
    const described = portal.entry?.shape?.columns;
    return described ? withResultFormats(described, portal.resultFormats) : undefined;
  }

  /** The masking plan of a statement's result, made at its first row. */
  private planOf(entry: PendingCompletion): ResultMaskPlan | undefined {
    if (!entry.masking || entry.plan || entry.refused) return entry.plan;
    const columns = this.columnsOf(entry);
    if (!columns) {
      entry.refused = 'tracegate could not tell the columns of this result, so it cannot mask it; describe the portal before executing it';
      return undefined;
    }
    entry.columns = columns;
    const plan = entry.masking.planResult(columns, this.namedQueries.lineageFor(entry.text ?? '') ?? entry.lineage ?? entry.text ?? '');
    if ('refused' in plan) entry.refused = plan.refused;
    else entry.plan = plan;
    return entry.plan;
  }

  /**
   * Ties the target's replies to the statements they answer, for the completed events, and
   * masks what the statement's profile says. Returns a replacement for the message (empty: drop
   * it), or undefined to relay it as it came.
   */
  private observe(frame: BackendFrame, chunk: Buffer): Buffer | undefined {
    switch (frame.type) {
      case BackendType.DataRow: {
        const head = this.pending[0];
        if (!head) return undefined;
        head.rows += 1;
        if (!head.masking) return undefined;
        const plan = this.planOf(head);
        if (!plan) return EMPTY; // refused: no row of it reaches the client
        const original = ClientSession.messageOf(frame, chunk);
        const masked = plan.active ? plan.maskDataRow(original) : original;
        this.capture(head, masked);
        return masked === original && !frame.withheld ? undefined : masked;
      }
      case BackendType.RowDescription:
      case BackendType.NoData: {
        const describe = this.describes[0];
        const head = this.pending[0];
        if (describe && (!head || describe.seq < head.seq)) {
          this.describes.shift();
          const columns = frame.type === BackendType.RowDescription ? readRowDescription(frame.body) : [];
          if (describe.portal) describe.portal.description = columns;
          if (describe.statement?.shape) describe.statement.shape.columns = columns;
          return describe.swallow ? EMPTY : undefined;
        }
        if (head && frame.type === BackendType.RowDescription && head.masking) head.columns = readRowDescription(frame.body);
        return undefined;
      }
      case BackendType.CopyOutResponse: {
        const head = this.pending[0];
        if (head?.masking) head.copyRedactor = head.masking.createStreamRedactor();
        return undefined;
      }
      case BackendType.CopyData: {
        const redactor = this.pending[0]?.copyRedactor;
        if (!redactor) return undefined;
        const data = redactor.push(frame.body);
        return data.length > 0 ? copyData(data) : EMPTY;
      }
      case BackendType.CopyDone: {
        const head = this.pending[0];
        const redactor = head?.copyRedactor;
        if (!head || !redactor) return undefined;
        const tail = redactor.end();
        addHits(head.hits, redactor.hits());
        head.copyRedactor = undefined;
        return tail.length > 0 ? Buffer.concat([copyData(tail), ClientSession.messageOf(frame, chunk)]) : undefined;
      }
      case BackendType.CommandComplete:
      case BackendType.EmptyQueryResponse:
      case BackendType.PortalSuspended:
      case BackendType.FunctionCallResponse: {
        const head = this.pending.shift();
        if (!head) return undefined;
        if (head.refused) {
          this.complete(head, { commandTag: '', rows: 0, sqlstate: SQLSTATE_INSUFFICIENT_PRIVILEGE, errorMessage: head.refused, executed: true });
          return serializeBackend.errorResponse({ severity: 'ERROR', sqlstate: SQLSTATE_INSUFFICIENT_PRIVILEGE, message: head.refused });
        }
        const tag = frame.type === BackendType.CommandComplete ? readCString(frame.body) : frame.type === BackendType.FunctionCallResponse ? 'FUNCTION CALL' : '';
        if (tag.endsWith(' VIEW') && !tag.startsWith('REFRESH')) this.viewsChanging = true;
        this.complete(head, { commandTag: tag, rows: head.rows, sqlstate: '', errorMessage: '', executed: true });
        return undefined;
      }
      case BackendType.NoticeResponse: {
        const masking = this.pending[0]?.masking ?? this.lastMasking;
        if (!masking) return undefined;
        return redactReport(frame.type, frame.body, (text) => masking.redactText(text), (hits) => this.pending[0] && addHits(this.pending[0].hits, hits));
      }
      case BackendType.ErrorResponse: {
        const fields = readReportFields(frame.body);
        const severity = fields.get('V') ?? fields.get('S');
        if (severity === 'FATAL' || severity === 'PANIC') this.targetFatal = `${fields.get('C') ?? ''} ${fields.get('M') ?? ''}`;
        const head = this.pending.shift();
        const masking = head?.masking ?? this.lastMasking;
        const hits: Record<string, number> = {};
        const redacted = masking ? redactReport(frame.type, frame.body, (text) => masking.redactText(text), (h) => addHits(hits, h)) : undefined;
        if (!head) return redacted;
        addHits(head.hits, hits);
        // The audit trail gets the error as the client does: masked.
        const message = redacted ? (readReportFields(redacted.subarray(5)).get('M') ?? '') : (fields.get('M') ?? '');
        this.complete(head, { commandTag: '', rows: head.rows, sqlstate: fields.get('C') ?? '', errorMessage: message, executed: true });
        return redacted;
      }
      case BackendType.ParseComplete:
      case BackendType.CloseComplete: {
        // Replies come in the order of the requests; a refused or skipped one gets none, and the
        // rest of its batch is skipped too, so the oldest unanswered change is the one confirmed.
        const change = this.statementChanges.shift();
        if (!change) return undefined;
        if (change.kind === 'statement') {
          if (change.entry) this.prepared.set(change.name, change.entry);
          else this.prepared.delete(change.name);
        }
        change.settle();
        return change.ownParse ? EMPTY : undefined;
      }
      case BackendType.ReadyForQuery: {
        const status = frame.body[0];
        if (status === 0x49 || status === 0x54 || status === 0x45) this.transactionStatus = String.fromCharCode(status) as 'I' | 'T' | 'E';
        const batch = this.openBatches.shift();
        // Only once its transaction has ended can the catalog's side connection see the change
        // (until then the session's own CREATE VIEW and renames stand in for it).
        if (this.viewsChanging && status === 0x49) {
          this.viewsChanging = false;
          this.views?.changed();
        }
        // Resolved after this chunk is relayed (promise callbacks run after this handler returns).
        if (this.openBatches.length === 0) for (const wake of this.idleWaiters.splice(0)) wake();
        // Parses, Closes and Describes of that batch still unanswered were refused or skipped.
        while (batch !== undefined && this.statementChanges.length > 0 && this.statementChanges[0]!.batch <= batch) this.statementChanges.shift()!.settle();
        while (batch !== undefined && this.describes.length > 0 && this.describes[0]!.batch <= batch) this.describes.shift();
        // Whatever of that batch got no reply was skipped after an error.
        while (this.pending.length > 0 && batch !== undefined && this.pending[0]!.batch <= batch) {
          this.complete(this.pending.shift()!, { commandTag: '', rows: 0, sqlstate: '', errorMessage: '', executed: false });
        }
        return undefined;
      }
      default:
        return undefined;
    }
  }

  /** Keeps a masked row for the audit trail, up to the cap; full chunks are written as they fill. */
  private capture(entry: PendingCompletion, masked: Buffer): void {
    const cap = this.options.recordedRows ?? 0;
    if (!entry.statementId || entry.rows > cap) return;
    entry.recorded.push(readDataRow(masked, entry.columns));
    if (entry.recorded.length >= RECORDED_ROWS_PER_CHUNK) this.flushRecorded(entry);
  }

  private flushRecorded(entry: PendingCompletion): void {
    if (entry.recorded.length === 0) return;
    const columns = entry.chunk === 0 ? (entry.columns ?? []).map((c) => c.name) : [];
    this.deps.recorder.statementResult(this.id, entry.statementId, entry.chunk, columns, entry.recorded.splice(0));
    entry.chunk += 1;
  }

  private complete(entry: PendingCompletion, result: { commandTag: string; rows: number; sqlstate: string; errorMessage: string; executed: boolean }): void {
    if (!entry.statementId) return;
    this.flushRecorded(entry);
    if (entry.plan) addHits(entry.hits, entry.plan.hits());
    this.deps.recorder.statementCompleted(this.id, entry.statementId, { ...result, durationMs: Date.now() - entry.startedAt, masked: entry.hits });
  }

  private protocolError(message: string, sqlstate = '08P01'): void {
    this.endReason = `protocol violation: ${message}`;
    this.fatal({ severity: 'FATAL', sqlstate, message });
  }

  private fatal(fields: ErrorFields): void {
    if (this.phase === 'closed') return;
    if (!this.socket.destroyed) this.socket.end(serializeBackend.errorResponse(fields));
    this.close();
  }

  private close(): void {
    if (this.phase === 'closed') return;
    const wasRelaying = this.upstream !== undefined;
    this.phase = 'closed';
    this.closing.abort();
    for (const wake of this.idleWaiters.splice(0)) wake();
    clearTimeout(this.startupTimer);
    this.deps.unregister(this);
    for (const change of this.statementChanges.splice(0)) change.settle();
    if (this.upstream) {
      this.upstream.socket.removeAllListeners('close');
      this.upstream.socket.end(serializeFrontend({ type: 'terminate' }));
    }
    if (!this.socket.destroyed) this.socket.end();
    if (this.leaseId) void this.deps.broker.release(this.leaseId).catch(() => undefined);
    if (wasRelaying) {
      void this.chain.then(() =>
        this.deps.recorder.sessionEnded(this.id, this.endReason).catch((error: unknown) => this.deps.logger.error({ session: this.id, err: (error as Error).message }, 'session end could not be recorded')),
      );
    }
  }
}

/**
 * The statement a trace comment belongs to: the one whose span holds it; a comment ahead of the
 * first statement (the parser's span starts at its first token) belongs to the one after it, and
 * one after the last semicolon to the last statement.
 */
function ownerOf(offset: number, statements: readonly SqlStatement[]): SqlStatement | undefined {
  return statements.find((s) => offset >= s.start && offset < s.end) ?? statements.find((s) => s.start > offset) ?? statements.at(-1);
}

/** A Bind's format for parameter i: none given means text, one applies to all. */
function formatOf(formats: readonly number[], i: number): number {
  return formats.length === 0 ? 0 : formats.length === 1 ? formats[0]! : (formats[i] ?? 0);
}

function parameterForAudit(value: Buffer | null, format: number, masking: MaskingProfile): string | null {
  if (value === null) return null;
  if (format === 1) return `(binary, ${value.length} bytes)`;
  return masking.redactText(value.toString('utf8')).text;
}
