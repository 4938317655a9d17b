import { Inject, Injectable } from '@nestjs/common';
import type { Observable } from 'rxjs';
import { randomUUID } from 'node:crypto';
import { SERVICE_CONTEXT, type ServiceContext } from '@tracegate/runtime';
import { decide, type Approval, type ApprovalStatus, type IdentityRef, type Reviewer } from '../domain/approval.js';
import { ApprovalError } from '../errors.js';
import { APPROVALS_CONFIG, type ApprovalsConfig } from '../approvals.config.js';
import { ApprovalRepository, isApprovalId, type VersionedApproval } from '../repositories/approval.repository.js';
import { ApprovalNotifications } from '../repositories/approval-notifications.js';
import { Clock } from '../repositories/clock.js';
import { ApprovalFeed } from './approval-feed.js';

/** What the gateway (or a grant workflow) asks reviewers to decide. */
export interface ApprovalAsk {
  readonly requester: IdentityRef;
  readonly target: string;
  readonly maskedCommand: string;
  readonly traceId: string;
  readonly sessionId: string;
  readonly rule: string;
  readonly reviewerGroup: string;
  /** 0: one approver. */
  readonly quorum: number;
  /** 0: the configured default. */
  readonly timeoutSeconds: number;
}

export type Verdict = { readonly kind: 'approve' } | { readonly kind: 'deny'; readonly reason: string };

const RETRY_EXPIRY_MS = 5_000;
// setTimeout holds at most 2^31-1 ms (about 24.8 days); a longer wait is taken in steps.
const MAX_TIMER_MS = 2_147_483_647;
const LIST_LIMIT = 500;

/**
 * Approval requests: opening, deciding, withdrawing, expiring and following them. Every change
 * goes through the decider and the repository, then to the feed (Watch streams, the Slack bot).
 */
@Injectable()
export class ApprovalDesk {
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private stopped = false;

  constructor(
    private readonly repository: ApprovalRepository,
    private readonly feed: ApprovalFeed,
    private readonly clock: Clock,
    private readonly notifications: ApprovalNotifications,
    @Inject(APPROVALS_CONFIG) private readonly config: ApprovalsConfig,
    @Inject(SERVICE_CONTEXT) private readonly context: ServiceContext,
  ) {}

  async request(ask: ApprovalAsk): Promise<Approval> {
    const timeoutSeconds = ask.timeoutSeconds || this.config.defaultTimeoutSeconds;
    if (timeoutSeconds > this.config.maxTimeoutSeconds) {
      throw ApprovalError.invalidArgument('timeout_seconds', `${timeoutSeconds} is longer than this service allows (${this.config.maxTimeoutSeconds}, TRACEGATE_APPROVALS_MAX_TIMEOUT_SECONDS)`);
    }
    const now = this.clock.now();
    const id = randomUUID();
    const terms = { ...ask, id, quorum: ask.quorum || 1, requestedAt: now, expiresAt: new Date(now.getTime() + timeoutSeconds * 1000) };
    const change = await this.repository.change(id, (state) => decide({ kind: 'request', terms }, state));
    this.publish(change);
    this.context.logger.info({ approval: id, requester: ask.requester.name || ask.requester.id, target: ask.target, reviewerGroup: terms.reviewerGroup, quorum: terms.quorum, rule: ask.rule }, 'approval requested');
    return change.approval;
  }

  async decide(id: string, reviewer: Reviewer, verdict: Verdict): Promise<Approval> {
    await this.expireIfDue(id);
    const at = this.clock.now();
    const change = await this.repository.change(id, (state) =>
      decide(verdict.kind === 'approve' ? { kind: 'approve', reviewer, at } : { kind: 'deny', reviewer, reason: verdict.reason, at }, state),
    );
    this.publish(change);
    this.context.logger.info({ approval: id, reviewer: reviewer.name, verdict: verdict.kind, state: change.approval.status }, 'approval decided');
    return change.approval;
  }

  async withdraw(id: string, requesterId: string, reason: string): Promise<Approval> {
    this.assertId(id);
    await this.expireIfDue(id);
    const change = await this.repository.change(id, (state) => decide({ kind: 'withdraw', requesterId, reason, at: this.clock.now() }, state));
    this.publish(change);
    return change.approval;
  }

  async get(id: string): Promise<VersionedApproval> {
    const found = await this.repository.find(id);
    if (!found) throw ApprovalError.notFound(id);
    return found;
  }

  list(status: ApprovalStatus | undefined): Promise<Approval[]> {
    return this.repository.list(status, LIST_LIMIT);
  }

  /** The request now, then each change until it is final (or the service stops). */
  watch(id: string): Observable<VersionedApproval> {
    return this.feed.follow(id, () => this.get(id));
  }

  /** At start: every pending request's deadline is timed again (or passed, and it expires now). */
  async resume(): Promise<void> {
    // Listening first: a request another replica opens while this one loads is not missed.
    await this.notifications.listen((id, version) => void this.heard(id, version));
    const pending = await this.repository.pending();
    for (const approval of pending) this.schedule(approval);
    if (pending.length > 0) this.context.logger.info({ pending: pending.length }, 'pending approval requests resumed');
  }

  /** Stops timing deadlines and ends Watch streams; the notifications stop with the database. */
  stop(): void {
    this.stopped = true;
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
    this.feed.drain();
  }

  /** A change committed by any replica: its followers here hear of it, and a pending request's deadline is timed here too. */
  private async heard(id: string, version: number): Promise<void> {
    if (this.stopped) return;
    try {
      const found = await this.repository.find(id);
      if (!found || found.version < version) return;
      this.feed.publishHeard(found);
      if (found.approval.status === 'pending') this.schedule(found.approval);
      else this.unschedule(id);
    } catch (error) {
      this.context.logger.warn({ err: (error as Error).message, approval: id }, 'could not read an approval request another replica changed');
    }
  }

  private publish(change: VersionedApproval & { events: readonly unknown[] }): void {
    if (change.events.length === 0) return;
    this.feed.publish({ approval: change.approval, version: change.version });
    if (change.approval.status === 'pending') this.schedule(change.approval);
    else this.unschedule(change.approval.id);
  }

  private schedule(approval: Approval): void {
    if (this.stopped || this.timers.has(approval.id)) return;
    const wait = Math.max(0, approval.expiresAt.getTime() - this.clock.now().getTime());
    const timer = setTimeout(() => {
      this.timers.delete(approval.id);
      if (wait > MAX_TIMER_MS) return this.schedule(approval);
      this.expire(approval.id).catch((error: unknown) => {
        this.context.logger.error({ err: error, approval: approval.id }, 'an approval request could not be expired; trying again');
        this.retry(approval);
      });
    }, Math.min(wait, MAX_TIMER_MS));
    timer.unref();
    this.timers.set(approval.id, timer);
  }

  private retry(approval: Approval): void {
    if (this.stopped) return;
    const timer = setTimeout(() => {
      this.timers.delete(approval.id);
      this.schedule(approval);
    }, RETRY_EXPIRY_MS);
    timer.unref();
    this.timers.set(approval.id, timer);
  }

  private unschedule(id: string): void {
    const timer = this.timers.get(id);
    if (timer) clearTimeout(timer);
    this.timers.delete(id);
  }

  private async expire(id: string): Promise<void> {
    const change = await this.repository.change(id, (state) => decide({ kind: 'expire', at: this.clock.now() }, state));
    if (change.events.length > 0) this.context.logger.info({ approval: id }, 'approval request expired');
    this.publish(change);
  }

  /** A verdict that arrives after the deadline (before its timer ran) meets an expired request. */
  private async expireIfDue(id: string): Promise<void> {
    this.assertId(id);
    const found = await this.repository.find(id);
    if (found?.approval.status === 'pending' && found.approval.expiresAt.getTime() <= this.clock.now().getTime()) await this.expire(id);
  }

  private assertId(id: string): void {
    if (!isApprovalId(id)) throw ApprovalError.notFound(id);
  }
}
