import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Inject, Injectable } from '@nestjs/common';
import type { auditV1 } from '@tracegate/contracts';
import { TOPICS } from '@tracegate/events';
import { SERVICE_CONTEXT, type ServiceContext } from '@tracegate/runtime';
import { AuditError, AuditErrorCode } from '../errors.js';
import { ProjectionRebuildRepository, REBUILD_SCHEMA } from '../repositories/projection-rebuild.repository.js';
import { SessionProjectionRepository } from '../repositories/session-projection.repository.js';
import { PROJECTION_BATCH_EVENTS, PROJECTION_GROUP, SessionProjector } from './session-projector.js';

/** How often a rebuild reports its progress. */
const PROGRESS_EVERY_MS = 250;

/**
 * Rebuilds the session projection without taking reads down: a fresh consumer group (a new
 * generation) reads tracegate.sessions.v1 from the beginning into a fresh schema while the live
 * projection keeps serving; once the fresh one has caught up, the live projector stops, the fresh
 * one applies the last events, the tables are swapped in one transaction, and the live projector
 * starts again on the new generation's group, where the rebuild left off.
 */
@Injectable()
export class ProjectionRebuilder {
  private running = false;

  constructor(
    @Inject(SERVICE_CONTEXT) private readonly context: ServiceContext,
    private readonly projection: SessionProjectionRepository,
    private readonly projector: SessionProjector,
    private readonly rebuild: ProjectionRebuildRepository,
  ) {}

  async *run(signal?: AbortSignal): AsyncGenerator<auditV1.RebuildProjectionResponse> {
    if (this.running) throw new AuditError(AuditErrorCode.Conflict, 'a rebuild of the audit projection is already running; wait for it to finish (its progress streams to whoever started it)');
    this.running = true;
    try {
      const generation = randomUUID();
      const group = `${PROJECTION_GROUP}.${generation}`;
      const topics = [TOPICS.sessions.name];
      const log = this.context.eventLog;
      const fresh = this.projection.inSchema(REBUILD_SCHEMA);
      let projected = 0;
      await this.rebuild.prepareFreshSchema();
      this.context.logger.info({ generation, group }, 'rebuilding the audit projection from the beginning of the log');
      const subscription = await log.subscribe({
        group,
        topics,
        fromBeginning: true,
        maxBatchEvents: PROJECTION_BATCH_EVENTS,
        batchHandler: async (deliveries) => {
          await fresh.applyBatch(deliveries);
          projected += deliveries.length;
        },
      });
      const progress = (phase: string, left: number): auditV1.RebuildProjectionResponse => ({ phase, eventsProjected: projected, eventsLeft: left, done: false, generation: '', sessions: 0 });
      try {
        for (;;) {
          const left = await log.consumerLag(group, topics);
          yield progress('replaying', left);
          if (left === 0) break;
          if (signal?.aborted) throw new AuditError(AuditErrorCode.Unavailable, 'the rebuild was cancelled by its caller; the live projection was left as it was');
          await sleep(PROGRESS_EVERY_MS);
        }
        yield progress('switching', 0);
        // Nothing writes the live tables from here on; the fresh projection applies whatever
        // arrived meanwhile, and then it is swapped in.
        await this.projector.stop();
        try {
          while ((await log.consumerLag(group, topics)) > 0) await sleep(20);
          await subscription.stop();
          await this.rebuild.switchOver(generation);
        } finally {
          await this.projector.start();
        }
      } finally {
        // Safe to repeat; on failure it leaves the fresh schema behind, dropped by the next rebuild.
        await subscription.stop();
      }
      const sessions = await this.rebuild.sessionCount();
      this.context.logger.info({ generation, events: projected, sessions }, 'the rebuilt audit projection is live');
      yield { phase: 'done', eventsProjected: projected, eventsLeft: 0, done: true, generation, sessions };
    } finally {
      this.running = false;
    }
  }
}
