import { createHash, randomUUID } from 'node:crypto';
import type { Client, ClientChannel, PseudoTtyInfo, ServerChannel, Session } from 'ssh2';
import type { Logger } from '@tracegate/runtime';
import { TraceRefusal } from '../postgres/ports.js';
import type {
  MaskingHits,
  MaskingProfile,
  MaskingProfiles,
  ReviewDesk,
  SessionRecorder,
  SshCommandKind,
  StatementContext,
  StatementDecision,
  StatementJudge,
  TraceFeatures,
  TraceRegistry,
  VerifiedIdentity,
} from '../postgres/ports.js';
import { awaitedReviewers, CommandGate } from '../command-gate.js';
import { exitTag, OutputLines, Utf8Guard, type OutputStream } from './output.js';

/** What a channel knows of the connection it belongs to. */
export interface CommandSite {
  readonly sessionId: string;
  readonly identity: VerifiedIdentity;
  readonly target: string;
  readonly targetLabels: Readonly<Record<string, string>>;
  readonly upstream: Client;
  readonly deps: {
    readonly judge: StatementJudge;
    readonly recorder: SessionRecorder;
    readonly reviews?: ReviewDesk | undefined;
    readonly traces?: TraceRegistry | undefined;
    readonly masking?: MaskingProfiles | undefined;
    readonly logger: Logger;
  };
  readonly options: {
    /** The profile for commands whose decision names none; '' for none. */
    readonly maskingFallbackProfile: string;
    /** Output lines kept per command in the audit trail. */
    readonly recordedLines: number;
    /**
     * With a terminal, held-back output (the tail the masker keeps in case a secret continues in
     * the next chunk) is let out after this long without new output, so an interactive prompt
     * shows. Without a terminal nothing is let out early: a secret split across chunks is masked.
     */
    readonly interactiveFlushMs: number;
  };
  /** Trace ids this connection has already checked. */
  readonly resolvedTraces: Map<string, TraceFeatures>;
}

/** The shell command an interactive shell is decided as: policy sees a shell reading its commands from the terminal. */
export const INTERACTIVE_SHELL_COMMAND = 'sh -i';

/** Environment variables passed on to the target (as OpenSSH's default AcceptEnv); the rest are dropped. */
const FORWARDED_ENV = /^(LANG|LC_[A-Z_]+|TZ)$/;
export const TRACE_ENV = 'TRACEGATE_TRACE_ID';

/**
 * A trace given with the command itself, as a leading shell assignment:
 * `ssh gw 'TRACEGATE_TRACE_ID=7f3c… df -h'`. This is the per-exec form, for clients whose env
 * requests do not arrive (OpenSSH sends none for sessions multiplexed over a ControlMaster).
 */
const TRACE_PREFIX = /^\s*TRACEGATE_TRACE_ID=(?:'([^']*)'|"([^"]*)"|([^\s'";&|<>()`$\\]+))(?:\s+|$)/;

/** The command without a leading TRACEGATE_TRACE_ID assignment, and that assignment's value. */
export function takeTracePrefix(command: string): { command: string; traceId?: string } {
  const match = TRACE_PREFIX.exec(command);
  if (!match) return { command };
  return { command: command.slice(match[0].length), traceId: (match[1] ?? match[2] ?? match[3] ?? '').trim() };
}

/** The exit status of a command the gateway refused (as a shell's "cannot execute"). */
export const REFUSED_EXIT_STATUS = 126;

/** Output lines recorded per statement_result event. */
const RECORD_BATCH = 100;

/**
 * One SSH session channel: the client's `env`, `pty-req` and then one `exec`, `shell` or
 * `subsystem`. The command is decided by policy (and held for review when it says so) before the
 * target sees it; its output is masked as it streams, recorded line by line, and its exit status
 * relayed. A refused command gets its reason on stderr and exit status 126.
 */
export class CommandChannel {
  private readonly env: Record<string, string> = {};
  private traceId: string | undefined;
  private pty: PseudoTtyInfo | undefined;
  private started = false;
  private upstreamChannel: ClientChannel | undefined;
  private readonly closed = new AbortController();
  private readonly gate: CommandGate;

  constructor(
    session: Session,
    private readonly site: CommandSite,
  ) {
    this.gate = new CommandGate(site.deps, site.options.maskingFallbackProfile, 'command');
    session.on('env', (accept, reject, info) => {
      if (info.key === TRACE_ENV) {
        // Kept by the gateway, never forwarded: the target never sees a trace.
        this.traceId = info.val.trim();
        accept?.();
      } else if (FORWARDED_ENV.test(info.key) && !this.started) {
        this.env[info.key] = info.val;
        accept?.();
      } else reject?.();
    });
    session.on('pty', (accept, reject, info) => {
      if (this.started) return reject?.();
      this.pty = info;
      accept?.();
    });
    session.on('window-change', (accept, _reject, info) => {
      if (this.pty) this.pty = { ...this.pty, rows: info.rows, cols: info.cols, height: info.height, width: info.width };
      this.upstreamChannel?.setWindow(info.rows, info.cols, info.height, info.width);
      accept?.();
    });
    session.on('signal', (accept, reject, info) => {
      if (!this.upstreamChannel) return reject?.();
      this.upstreamChannel.signal(info.name);
      accept?.();
    });
    session.on('exec', (accept, reject, info) => void this.run('ssh-exec', info.command, accept, reject));
    session.on('shell', (accept, reject) => void this.run('ssh-shell', INTERACTIVE_SHELL_COMMAND, accept, reject));
    session.on('subsystem', (accept, reject, info) => void this.run('ssh-subsystem', info.name, accept, reject));
    session.on('close', () => this.closed.abort());
  }

  private async run(kind: SshCommandKind, given: string, accept: () => ServerChannel, reject: (() => void) | undefined): Promise<void> {
    if (this.started) return reject?.();
    this.started = true;
    // Taken off before anything sees the command: policy decides, and the target runs, the rest.
    const { command, traceId: ownTrace } = kind === 'ssh-exec' ? takeTracePrefix(given) : { command: given };
    if (ownTrace !== undefined) this.traceId = ownTrace;
    const stream = accept();
    stream.on('close', () => {
      this.closed.abort();
      this.upstreamChannel?.close();
    });
    const statementId = randomUUID();
    const startedAt = Date.now();
    const { site } = this;
    const newline = this.pty ? '\r\n' : '\n';
    const refuse = (reason: string) => {
      if (stream.writable) stream.stderr.write(`tracegate: ${reason}${newline}`);
      stream.exit(REFUSED_EXIT_STATUS);
      stream.end();
    };
    try {
      if (command.trim() === '') return refuse(`no command follows ${TRACE_ENV}=…; give the command after it`);
      const trace = await this.trace();
      const context: StatementContext = {
        identity: site.identity,
        target: site.target,
        targetLabels: site.targetLabels,
        text: command,
        // Exact: two command lines differing in an argument (rm -rf /tmp/x vs /) must never share a cached decision.
        fingerprint: `ssh:${createHash('sha256').update(command).digest('base64url').slice(0, 22)}`,
        parsed: true,
        inMultiStatement: false,
        protocol: kind,
        ...(trace.traceId ? { traceId: trace.traceId } : {}),
        ...(trace.features ? { trace: trace.features } : {}),
      };
      const decision = trace.problem ? this.gatewayRefusal(trace.problem) : await this.decide(context, stream, newline);
      const masking = this.profileFor(decision);
      const finalDecision =
        decision.effect === 'allow' && kind === 'ssh-subsystem' && masking
          ? this.gatewayRefusal(`the ${command} subsystem carries files in a binary protocol that masking profile '${masking.name}' cannot read, so it is refused while a profile applies; run commands with ssh instead`)
          : decision;
      const recordedText = masking ? masking.redactText(command).text : command;
      await site.deps.recorder.statementRequested(site.sessionId, statementId, { ...context, text: recordedText }, finalDecision, 0);
      if (finalDecision.effect !== 'allow') {
        site.deps.recorder.statementCompleted(site.sessionId, statementId, { commandTag: 'refused', rows: 0, durationMs: Date.now() - startedAt, sqlstate: '', errorMessage: finalDecision.reason, executed: false });
        return refuse(finalDecision.reason);
      }
      if (this.closed.signal.aborted) return;
      const channel = await this.open(kind, command);
      this.upstreamChannel = channel;
      if (this.closed.signal.aborted) {
        channel.close();
        return;
      }
      this.relay(stream, channel, masking, statementId, startedAt);
    } catch (error) {
      site.deps.logger.warn({ session: site.sessionId, statementId, err: (error as Error).message }, 'SSH command could not be run');
      refuse(`the command was not run: ${(error as Error).message}`);
    }
  }

  /** The trace in the channel's TRACEGATE_TRACE_ID, checked once per connection. */
  private async trace(): Promise<{ traceId?: string; features?: TraceFeatures; problem?: string }> {
    const traceId = this.traceId;
    if (!traceId) return {};
    const { site } = this;
    const traces = site.deps.traces;
    if (!traces) return { problem: `this gateway records no reasoning traces (no trace service is configured); unset ${TRACE_ENV}` };
    try {
      let features = site.resolvedTraces.get(traceId);
      if (!features) {
        features = await traces.resolve(traceId, site.identity, { sessionId: site.sessionId, target: site.target });
        site.resolvedTraces.set(traceId, features);
      }
      return { traceId, features };
    } catch (error) {
      if (error instanceof TraceRefusal) return { traceId, problem: error.message };
      site.deps.logger.warn({ session: site.sessionId, err: (error as Error).message }, 'trace service unavailable');
      return { traceId, problem: 'the trace service could not be reached to check the attached trace; try again shortly' };
    }
  }

  private gatewayRefusal(reason: string): StatementDecision {
    return { effect: 'deny', rule: 'tracegate', reason, policyVersion: '', maskingProfile: '' };
  }

  private profileFor(decision: StatementDecision): MaskingProfile | undefined {
    return this.gate.profileFor(decision);
  }

  /** Policy's decision; a review is held here, the client told on stderr which request it waits for. */
  private decide(context: StatementContext, stream: ServerChannel, newline: string): Promise<StatementDecision> {
    return this.gate.decide(context, {
      sessionId: this.site.sessionId,
      signal: this.closed.signal,
      onHeld: (requestId, terms) => {
        if (stream.writable) stream.stderr.write(`tracegate: this command is held for approval (request ${requestId}); it runs when ${awaitedReviewers(terms)}. Reviewers: tracegate approvals approve ${requestId}${newline}`);
      },
    });
  }

  /** Opens the same kind of channel on the target, with the client's terminal and allowed environment. */
  private open(kind: SshCommandKind, command: string): Promise<ClientChannel> {
    const upstream = this.site.upstream;
    const pty = this.pty ? { rows: this.pty.rows, cols: this.pty.cols, height: this.pty.height, width: this.pty.width, term: this.pty.term, modes: this.pty.modes } : undefined;
    return new Promise((resolve, reject) => {
      const done = (error: Error | undefined, channel: ClientChannel) => (error ? reject(new Error(`the target refused to open the channel: ${error.message}`)) : resolve(channel));
      if (kind === 'ssh-exec') upstream.exec(command, { env: this.env, ...(pty ? { pty } : {}) }, done);
      else if (kind === 'ssh-shell') upstream.shell(pty ?? false, { env: this.env }, done);
      else upstream.subsys(command, done);
    });
  }

  /**
   * Streams the command's input to the target and its output back, each output stream through a
   * masker of its own. Backpressure holds the target's side while the client is slow.
   */
  private relay(stream: ServerChannel, channel: ClientChannel, masking: MaskingProfile | undefined, statementId: string, startedAt: number): void {
    const { site } = this;
    const lines = new OutputLines(site.options.recordedLines);
    const hits: Record<string, number> = {};
    let chunk = 0;
    let exit: { code?: number | null; signal?: string; coreDumped?: boolean; description?: string } | undefined;
    let stoppedFor: string | undefined;
    const record = () => {
      const rows = lines.take();
      if (rows.length === 0) return;
      site.deps.recorder.statementResult(site.sessionId, statementId, chunk, chunk === 0 ? ['stream', 'text'] : [], rows);
      chunk += 1;
    };
    const outputs = {
      stdout: { source: channel as NodeJS.ReadableStream, sink: stream as NodeJS.WritableStream, masker: masking?.createStreamRedactor(), guard: new Utf8Guard() },
      stderr: { source: channel.stderr as NodeJS.ReadableStream, sink: stream.stderr as NodeJS.WritableStream, masker: masking?.createStreamRedactor(), guard: new Utf8Guard() },
    };
    const deliver = (name: OutputStream, bytes: Buffer) => {
      if (bytes.length === 0) return;
      if (masking) lines.push(name, bytes.toString('utf8'));
      const { sink, source } = outputs[name];
      if (!sink.write(bytes)) {
        source.pause();
        (sink as NodeJS.EventEmitter).once('drain', () => source.resume());
      }
    };
    let flushTimer: NodeJS.Timeout | undefined;
    const flushHeld = () => {
      flushTimer = undefined;
      for (const name of ['stdout', 'stderr'] as const) {
        const masker = outputs[name].masker;
        if (masker) deliver(name, masker.flush());
      }
    };
    const stop = (reason: string) => {
      if (stoppedFor) return;
      stoppedFor = reason;
      channel.close();
    };
    for (const name of ['stdout', 'stderr'] as const) {
      const output = outputs[name];
      output.source.on('data', (data: Buffer) => {
        if (stoppedFor) return;
        if (!output.masker) {
          deliver(name, data);
          return;
        }
        if (!output.guard.accept(data)) {
          return stop(`the command wrote binary output, which masking profile '${masking!.name}' cannot read, so it was stopped and its output withheld`);
        }
        deliver(name, output.masker.push(data));
        if (this.pty && site.options.interactiveFlushMs > 0) {
          clearTimeout(flushTimer);
          flushTimer = setTimeout(flushHeld, site.options.interactiveFlushMs);
        }
        if (lines.kept >= RECORD_BATCH) record();
      });
    }
    stream.pipe(channel);
    channel.on('exit', (code: number | null, signal?: string, coreDumped?: boolean, description?: string) => {
      exit = { code, ...(signal ? { signal } : {}), ...(coreDumped !== undefined ? { coreDumped } : {}), ...(description ? { description } : {}) };
    });
    channel.on('close', () => {
      clearTimeout(flushTimer);
      for (const name of ['stdout', 'stderr'] as const) {
        const { masker, guard } = outputs[name];
        if (!masker) continue;
        if (!stoppedFor && !guard.end()) stoppedFor = `the command's output ended inside a character, which masking profile '${masking!.name}' cannot read`;
        const rest = masker.end();
        if (!stoppedFor) deliver(name, rest);
        for (const [rule, count] of Object.entries(masker.hits() as MaskingHits)) hits[rule] = (hits[rule] ?? 0) + count;
      }
      lines.end();
      record();
      if (stream.writable) {
        if (stoppedFor) {
          stream.stderr.write(`${this.pty ? '\r\n' : '\n'}tracegate: ${stoppedFor}${this.pty ? '\r\n' : '\n'}`);
          stream.exit(REFUSED_EXIT_STATUS);
        } else if (exit?.signal) stream.exit(exit.signal.replace(/^SIG/, ''), exit.coreDumped ?? false, exit.description ?? '');
        else if (exit) stream.exit(exit.code ?? 0);
        stream.end();
      }
      site.deps.recorder.statementCompleted(site.sessionId, statementId, {
        commandTag: stoppedFor ? 'stopped' : exitTag(exit),
        rows: lines.total,
        durationMs: Date.now() - startedAt,
        sqlstate: '',
        errorMessage: stoppedFor ?? '',
        executed: true,
        masked: hits,
      });
    });
  }
}
