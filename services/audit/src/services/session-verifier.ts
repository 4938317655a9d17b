import { Inject, Injectable } from '@nestjs/common';
import { Counter, Gauge } from 'prom-client';
import { SERVICE_CONTEXT, type ServiceContext } from '@tracegate/runtime';
import { AUDIT_CONFIG, type AuditConfig } from '../audit.config.js';
import { checkpointProblems } from '../domain/checkpoint.js';
import { verifySessionEvidence, type SessionVerdict } from '../domain/session-verification.js';
import { AuditError } from '../errors.js';
import { SessionEvidenceRepository } from '../repositories/session-evidence.repository.js';

/**
 * Verifies sessions on request (VerifySession) and, every TRACEGATE_AUDIT_VERIFY_INTERVAL_MS, a
 * round of them in turn, so every session is checked again and again: a failing one is logged
 * with its problems and counted in `tracegate_audit_sessions_failing_verification`.
 */
@Injectable()
export class SessionVerifier {
  private timer: NodeJS.Timeout | undefined;
  private round: Promise<void> | undefined;
  /** The periodic walk's position: the id of the last session checked. */
  private cursor = '';
  private readonly failing = new Set<string>();
  private readonly failingGauge: Gauge;
  private readonly checked: Counter<'verdict'>;

  constructor(
    @Inject(SERVICE_CONTEXT) private readonly context: ServiceContext,
    @Inject(AUDIT_CONFIG) private readonly config: AuditConfig,
    private readonly evidence: SessionEvidenceRepository,
  ) {
    this.failingGauge = new Gauge({
      name: 'tracegate_audit_sessions_failing_verification',
      help: 'Sessions whose last periodic verification found a problem (a changed or missing event, a row that disagrees with the log, a checkpoint that no longer matches). Anything above 0 needs looking into: `tracegate sessions verify <id>` names each problem.',
      registers: [context.metrics],
    });
    this.checked = new Counter({
      name: 'tracegate_audit_sessions_verified_total',
      help: 'Sessions verified, by verdict: intact or tampered.',
      labelNames: ['verdict'],
      registers: [context.metrics],
    });
  }

  async verify(sessionId: string): Promise<SessionVerdict> {
    if (!sessionId) throw AuditError.invalidArgument('id', 'is required: the session id `tracegate sessions list` shows');
    const [copy, session, statements, heads, results] = await Promise.all([
      this.evidence.copiedEvents(sessionId),
      this.evidence.session(sessionId),
      this.evidence.statements(sessionId),
      this.evidence.checkpointHeads(sessionId),
      this.evidence.resultChunks(sessionId),
    ]);
    const log = await this.evidence.logEvents(copy.map((e) => e.id));
    if (!session && copy.length === 0 && (log ?? []).length === 0) throw AuditError.sessionNotFound(sessionId);
    const key = this.config.checkpointKey;
    const checkpoints = heads.map((h) => ({ checkpointId: h.checkpointId, sequence: h.sequence, hash: h.hash, problems: checkpointProblems(h.checkpoint, key?.publicKey, key?.keyId) }));
    const verdict = verifySessionEvidence({ sessionId, log, copy, session, statements, checkpoints, results });
    this.checked.inc({ verdict: verdict.intact ? 'intact' : 'tampered' });
    return verdict;
  }

  start(): void {
    const every = this.config.verifyIntervalMs;
    if (every <= 0 || this.timer) return;
    this.timer = setInterval(() => {
      this.round ??= this.verifyRound().finally(() => (this.round = undefined));
    }, every);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.round;
  }

  /** One round of the periodic walk: the next sessions after the cursor, wrapping at the end. */
  async verifyRound(): Promise<void> {
    try {
      const ids = await this.evidence.sessionIdsAfter(this.cursor, this.config.verifySessionsPerRound);
      this.cursor = ids.length < this.config.verifySessionsPerRound ? '' : ids.at(-1)!;
      for (const id of ids) {
        const verdict = await this.verify(id);
        if (verdict.intact) {
          this.failing.delete(id);
          continue;
        }
        this.failing.add(id);
        this.context.logger.error({ sessionId: id, problems: verdict.problems }, `session ${id} failed verification: ${verdict.problems.length} problem(s); run \`tracegate sessions verify ${id}\``);
      }
      this.failingGauge.set(this.failing.size);
    } catch (error) {
      this.context.logger.warn({ err: error }, 'the periodic session verification could not finish its round; it tries again at the next interval');
    }
  }
}
