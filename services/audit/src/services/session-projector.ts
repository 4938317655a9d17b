import { Inject, Injectable } from '@nestjs/common';
import { Counter, Gauge } from 'prom-client';
import { TOPICS, type CloudEvent, type Subscription } from '@tracegate/events';
import { SERVICE_CONTEXT, type ServiceContext } from '@tracegate/runtime';
import { sessionEventOf } from '../domain/session-events.js';
import { SessionProjectionRepository, type ApplyOutcome } from '../repositories/session-projection.repository.js';

/** The consumer group's name, before the projection's generation. */
export const PROJECTION_GROUP = 'audit-projection';

export type ProjectOutcome = ApplyOutcome | 'skipped';

/**
 * Keeps the session projection up to date with `tracegate.sessions.v1`: reads the topic from the
 * beginning, one event at a time per key, and applies each idempotently by event id. The position
 * is committed only after the event's transaction commits, so a crash redelivers it, and the
 * processed-events row makes that redelivery a no-op.
 */
@Injectable()
export class SessionProjector {
  private subscription: Subscription | undefined;
  private readonly projected: Counter<'outcome'>;
  private readonly eventAge: Gauge;

  constructor(
    @Inject(SERVICE_CONTEXT) private readonly context: ServiceContext,
    private readonly projection: SessionProjectionRepository,
  ) {
    this.projected = new Counter({
      name: 'tracegate_audit_events_projected_total',
      help: 'Session events the audit projection handled, by outcome: applied, duplicate (already applied: a redelivery), skipped (a type it does not know).',
      labelNames: ['outcome'],
      registers: [context.metrics],
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

  async start(): Promise<void> {
    if (this.subscription) return;
    const group = await this.group();
    this.subscription = await this.context.eventLog.subscribe({
      group,
      topics: [TOPICS.sessions.name],
      fromBeginning: true,
      handler: async ({ event }) => {
        await this.project(event);
      },
    });
    this.context.logger.info({ group, topic: TOPICS.sessions.name }, 'audit projection is following the session events');
  }

  /** Applies one event; safe to call again with the same event (the second call changes nothing). */
  async project(event: CloudEvent): Promise<ProjectOutcome> {
    const sessionEvent = sessionEventOf(event);
    if (!sessionEvent) {
      this.context.logger.warn({ eventId: event.id, type: event.type, subject: event.subject }, 'skipped a session event of a type the audit projection does not know');
      this.projected.inc({ outcome: 'skipped' });
      return 'skipped';
    }
    const outcome = await this.projection.apply(sessionEvent, event.type);
    this.projected.inc({ outcome });
    if (outcome === 'applied') this.eventAge.set(Math.max(0, (Date.now() - sessionEvent.time.getTime()) / 1000));
    return outcome;
  }

  /** Finishes the event in hand, commits its position and stops reading. */
  async stop(): Promise<void> {
    const subscription = this.subscription;
    this.subscription = undefined;
    await subscription?.stop();
  }
}
