import { Inject, Injectable, type BeforeApplicationShutdown, type OnApplicationBootstrap } from '@nestjs/common';
import { TOPICS, type Subscription } from '@tracegate/events';
import { SERVICE_CONTEXT, type ServiceContext } from '@tracegate/runtime';
import { TraceProjectionRepository } from '../repositories/trace-projection.repository.js';

/** The consumer group's name, before the projection's generation. */
export const TRACE_PROJECTION_GROUP = 'audit-traces-projection';

/**
 * Follows tracegate.traces.v1 and tracegate.audit.v1 from the beginning and applies them to the
 * trace and reader-grant tables, so dropping the audit schema and restarting rebuilds traces,
 * grants and the readers' chain heads from the log, as it does sessions.
 */
@Injectable()
export class TraceProjector implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private subscription: Subscription | undefined;

  constructor(
    @Inject(SERVICE_CONTEXT) private readonly context: ServiceContext,
    private readonly projection: TraceProjectionRepository,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    const group = `${TRACE_PROJECTION_GROUP}.${await this.projection.generation()}`;
    this.subscription = await this.context.eventLog.subscribe({
      group,
      topics: [TOPICS.traces.name, TOPICS.audit.name],
      fromBeginning: true,
      handler: async ({ event }) => {
        const outcome = await this.projection.apply(event);
        if (outcome === 'applied') this.context.logger.debug({ eventId: event.id, type: event.type }, 'trace projection applied an event it had not stored yet');
      },
    });
  }

  /** Before the database closes: finishes the event in hand and commits its position. */
  async beforeApplicationShutdown(): Promise<void> {
    const subscription = this.subscription;
    this.subscription = undefined;
    await subscription?.stop();
  }
}
