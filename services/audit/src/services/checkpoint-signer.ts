import { Inject, Injectable } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { GENESIS, headOf, sealEvent, TOPICS, type ChainHead, type CloudEvent } from '@tracegate/events';
import { SERVICE_CONTEXT, type ServiceContext } from '@tracegate/runtime';
import { AUDIT_CONFIG, type AuditConfig } from '../audit.config.js';
import { CHECKPOINT_EVENT_TYPE, CHECKPOINT_SUBJECT, signCheckpoint, type CheckpointData, type CheckpointHead } from '../domain/checkpoint.js';
import { CheckpointRepository } from '../repositories/checkpoint.repository.js';
import { SessionProjector } from './session-projector.js';
import type { BatchOutcome } from '../repositories/session-projection.repository.js';

/**
 * Signs checkpoints over the projected session events: once TRACEGATE_AUDIT_CHECKPOINT_EVERY_EVENTS
 * events were projected since the last one, or TRACEGATE_AUDIT_CHECKPOINT_INTERVAL_MS after the
 * first of them, it signs (Ed25519) the newest sequence and hash of every session that moved, and
 * appends that as a dev.tracegate.checkpoint.signed.v1 event on tracegate.audit.v1. Rewriting a
 * session's whole history, chain recomputed, still disagrees with the hash a checkpoint signed,
 * and the rewriter has no key to sign a new checkpoint.
 */
@Injectable()
export class CheckpointSigner {
  private pending = new Map<string, CheckpointHead>();
  private pendingEvents = 0;
  private timer: NodeJS.Timeout | undefined;
  private signing: Promise<void> = Promise.resolve();
  private chain: { head: ChainHead; checkpointId: string } | undefined;
  private stopping = false;

  constructor(
    @Inject(SERVICE_CONTEXT) private readonly context: ServiceContext,
    @Inject(AUDIT_CONFIG) private readonly config: AuditConfig,
    private readonly checkpoints: CheckpointRepository,
    private readonly projector: SessionProjector,
  ) {}

  get enabled(): boolean {
    return this.config.checkpointKey !== undefined;
  }

  /** Called after each projected batch has committed. */
  readonly onProjected = (outcome: BatchOutcome): void => {
    if (!this.enabled || outcome.heads.size === 0) return;
    for (const [sessionId, head] of outcome.heads) {
      const known = this.pending.get(sessionId);
      if (!known || head.sequence > known.sequence) this.pending.set(sessionId, { sessionId, sequence: head.sequence, hash: head.hash });
    }
    this.pendingEvents += outcome.applied + outcome.skipped;
    if (this.pendingEvents >= this.config.checkpointEveryEvents) void this.signNow();
    else this.timer ??= setTimeout(() => void this.signNow(), this.config.checkpointIntervalMs);
  };

  /** Signs what is pending now (one at a time); resolves once it is on the log and stored. */
  signNow(): Promise<void> {
    this.signing = this.signing.then(() => this.signPending()).catch((error: unknown) => {
      if (error instanceof NotCaughtUp) this.context.logger.debug(error.message);
      else this.context.logger.error({ err: error }, 'could not sign a checkpoint; the sessions it would cover are signed with the next one');
      // Try again later even if no more events come.
      if (!this.stopping && this.pending.size > 0) this.timer ??= setTimeout(() => void this.signNow(), this.config.checkpointIntervalMs);
    });
    return this.signing;
  }

  async stop(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.pending.size > 0) await this.signNow();
    await this.signing;
  }

  private async signPending(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    const key = this.config.checkpointKey;
    if (!key || this.pending.size === 0) return;
    const heads = [...this.pending.values()].sort((a, b) => (a.sessionId < b.sessionId ? -1 : 1));
    const covered = this.pendingEvents;
    this.pending = new Map();
    this.pendingEvents = 0;
    try {
      if (!this.chain) {
        // After the schema was dropped, the earlier checkpoints come back from the log first; a
        // checkpoint signed before that would start a second chain.
        if (!(await this.projector.checkpointsCaughtUp())) throw new NotCaughtUp('a checkpoint waits until the earlier checkpoints are read back from the log');
        this.chain = await this.lastCheckpoint();
      }
      const checkpointId = randomUUID();
      const signedAt = new Date();
      const data: CheckpointData = signCheckpoint({ checkpointId, previousCheckpointId: this.chain.checkpointId, keyId: key.keyId, signedAt: signedAt.toISOString(), heads }, key.privateKey);
      const event = sealEvent({ type: CHECKPOINT_EVENT_TYPE, subject: CHECKPOINT_SUBJECT, source: '/tracegate/audit', data, time: signedAt }, this.chain.head);
      await this.context.eventLog.append([{ topic: TOPICS.audit.name, key: CHECKPOINT_SUBJECT, event }]);
      await this.checkpoints.store(event as CloudEvent<CheckpointData>);
      this.chain = { head: headOf(event), checkpointId };
      this.context.logger.info({ checkpointId, sessions: heads.length, events: covered, keyId: key.keyId }, 'signed a checkpoint');
    } catch (error) {
      // Put the heads back (newer ones that arrived meanwhile win) so the next checkpoint covers them.
      for (const head of heads) if (!this.pending.has(head.sessionId)) this.pending.set(head.sessionId, head);
      this.pendingEvents += covered;
      this.chain = undefined;
      throw error;
    }
  }

  private async lastCheckpoint(): Promise<{ head: ChainHead; checkpointId: string }> {
    const last = await this.checkpoints.last();
    return last ? { head: headOf(last), checkpointId: (last.data as CheckpointData).checkpointId } : { head: GENESIS, checkpointId: '' };
  }
}

class NotCaughtUp extends Error {}
