import { Inject, Injectable } from '@nestjs/common';
import { Counter, Gauge } from 'prom-client';
import { TOPICS, type CloudEvent, type DeliveredEvent, type Subscription } from '@tracegate/events';
import { SERVICE_CONTEXT, type ServiceContext } from '@tracegate/runtime';
import { CHECKPOINT_EVENT_TYPE, type CheckpointData } from '../domain/checkpoint.js';
import { ApprovalReviewRepository } from '../repositories/approval-review.repository.js';
import { CheckpointRepository } from '../repositories/checkpoint.repository.js';
import { SessionProjectionRepository, type BatchOutcome, type ProjectOutcome } from '../repositories/session-projection.repository.js';

/** The consumer group's name, before the projection's generation. */
export const PROJECTION_GROUP = 'audit-projection';

/** Most events the projection applies in one transaction. */
export const PROJECTION_BATCH_EVENTS = 1000;

export type { ProjectOutcome };

/** Told about each applied batch: the sessions it moved forward (the checkpoint signer listens). */
export type ProjectionListener = (outcome: BatchOutcome) => void;

/**
 * Keeps the session projection up to date with `tracegate.sessions.v1`: reads the topic from the
 * beginning in batches of consecutive events and applies each batch in one transaction,
 * idempotently by event id. Positions are committed only after the batch's transaction commits,
 * so a crash redelivers it, and the processed-events rows make that redelivery a no-op.
 */
@Injectable()
export class SessionProjector {
  private subscription: Subscription | undefined;
  private readonly projected: Counter<'outcome'>;
  private readonly eventAge: Gauge;
  private readonly listeners = new Set<ProjectionListener>();
  /** The consumer group while the projection runs. */
  private currentGroup: string | undefined;

  constructor(
    @Inject(SERVICE_CONTEXT) private readonly context: ServiceContext,
    private readonly projection: SessionProjectionRepository,
    private readonly checkpoints: CheckpointRepository,
    private readonly reviews: ApprovalReviewRepository,
  ) {
    this.projected = new Counter({
      name: 'tracegate_audit_events_projected_total',
      help: 'Session events the audit projection handled, by outcome: applied, duplicate (already applied: a redelivery), skipped (a type it does not know).',
      labelNames: ['outcome'],
      registers: [context.metrics],
    });
    const groupOf = () => this.currentGroup;
    new Gauge({
      name: 'tracegate_audit_projection_lag_events',
      help: 'Session events on the log the projection has not applied yet (its consumer group lag), read from the log at each scrape.',
      registers: [context.metrics],
      async collect() {
        const group = groupOf();
        if (!group) return;
        try {
          this.set(await context.eventLog.consumerLag(group, [TOPICS.sessions.name]));
        } catch (error) {
          context.logger.warn({ err: error }, 'could not read the projection lag from the event log');
        }
      },
    });
    this.eventAge = new Gauge({
      name: 'tracegate_audit_projection_event_age_seconds',
      help: 'How old the last projected session event was when it was applied: how far the projection trails the log while events flow.',
      registers: [context.metrics],
    });
  }

  /** The consumer group: named after the schema's generation, so a rebuilt schema reads the log from offset 0. */
  async group(): Promise<string> {
    return `${PROJECTION_GROUP}.${await this.projection.generation()}`;
  }

  onApplied(listener: ProjectionListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async start(): Promise<void> {
    if (this.subscription) return;
    const group = await this.group();
    this.currentGroup = group;
    this.subscription = await this.context.eventLog.subscribe({
      group,
      // The audit topic for the signed checkpoints: a rebuilt schema gets them back, and the
      // signer continues their chain instead of starting a second one.
      // And the approvals, so a reviewed statement shows who approved or denied it.
      topics: [TOPICS.sessions.name, TOPICS.audit.name, TOPICS.approvals.name],
      fromBeginning: true,
      maxBatchEvents: PROJECTION_BATCH_EVENTS,
      // On Kafka, two partitions' batches at once: their sessions are disjoint (one session, one
      // partition), and one batch's database round trips overlap the other's.
      partitionsConcurrently: 2,
      batchHandler: async (deliveries) => {
        const checkpoints = deliveries.filter((d) => d.topic === TOPICS.audit.name && d.event.type === CHECKPOINT_EVENT_TYPE);
        for (const { event } of checkpoints) await this.checkpoints.store(event as CloudEvent<CheckpointData>);
        const approvals = deliveries.filter((d) => d.topic === TOPICS.approvals.name);
        if (approvals.length > 0) await this.reviews.applyBatch(approvals.map((d) => d.event));
        const sessions = deliveries.filter((d) => d.topic === TOPICS.sessions.name);
        if (sessions.length > 0) await this.projectBatch(sessions);
      },
    });
    this.context.logger.info({ group, topic: TOPICS.sessions.name }, 'audit projection is following the session events');
  }

  /** Whether every checkpoint on the log is in audit.checkpoints (the signer waits for this before its first one). */
  async checkpointsCaughtUp(): Promise<boolean> {
    const group = this.currentGroup;
    return group !== undefined && (await this.context.eventLog.consumerLag(group, [TOPICS.audit.name])) === 0;
  }

  /** Applies consecutive events in one transaction; safe to call again with any of them. */
  async projectBatch(deliveries: readonly Pick<DeliveredEvent, 'event' | 'position'>[]): Promise<BatchOutcome> {
    const outcome = await this.projection.applyBatch(deliveries);
    for (const [type, eventId] of outcome.unknownTypes) {
      this.context.logger.warn({ eventId, type }, 'skipped a session event of a type the audit projection does not know');
    }
    if (outcome.applied) this.projected.inc({ outcome: 'applied' }, outcome.applied);
    if (outcome.duplicate) this.projected.inc({ outcome: 'duplicate' }, outcome.duplicate);
    if (outcome.skipped) this.projected.inc({ outcome: 'skipped' }, outcome.skipped);
    if (outcome.newest) this.eventAge.set(Math.max(0, (Date.now() - outcome.newest.getTime()) / 1000));
    for (const listener of this.listeners) listener(outcome);
    return outcome;
  }

  /** Applies one event; safe to call again with the same event (the second call changes nothing). */
  async project(event: CloudEvent, position = ''): Promise<ProjectOutcome> {
    const outcome = await this.projectBatch([{ event, position }]);
    return outcome.applied ? 'applied' : outcome.duplicate ? 'duplicate' : 'skipped';
  }

  /** Finishes the batch in hand, commits its positions and stops reading. */
  async stop(): Promise<void> {
    const subscription = this.subscription;
    this.subscription = undefined;
    await subscription?.stop();
  }
}
