import type { DeliveredEvent, EventHandler } from './event-log.js';

/**
 * Remembers which events a consumer has already applied, so a redelivered event (after a handler
 * failure, a restart or a replay) has no second effect. Projections are idempotent by event id.
 *
 * `TUnit` is the unit of work the effect runs in. The id must be recorded in the same unit as the
 * effect: recorded without the effect, a crash loses the effect; the effect without the record, a
 * redelivery applies it twice. {@link PostgresProcessedEvents} makes the unit a database
 * transaction; {@link InMemoryProcessedEvents} has none and suits tests and single-process caches.
 */
export interface ProcessedEventStore<TUnit> {
  /**
   * Runs `effect` unless `consumer` has already processed `eventId`, and records the id with it.
   * Resolves `true` when the effect ran, `false` when it had already been applied. If `effect`
   * throws, nothing is recorded and the error propagates, so the event is delivered again.
   */
  runOnce(consumer: string, eventId: string, effect: (unit: TUnit) => Promise<void>): Promise<boolean>;
}

export type IdempotentEffect<TUnit> = (delivery: DeliveredEvent, unit: TUnit) => Promise<void>;

/**
 * Wraps an effect as an {@link EventHandler} that applies each event at most once for `consumer`
 * (a projection's name). Combined with the log's at-least-once delivery this is exactly-once
 * in effect.
 */
export function idempotentHandler<TUnit>(
  store: ProcessedEventStore<TUnit>,
  consumer: string,
  effect: IdempotentEffect<NoInfer<TUnit>>,
): EventHandler {
  return async (delivery) => {
    await store.runOnce(consumer, delivery.event.id, (unit) => effect(delivery, unit));
  };
}

/**
 * Processed ids in this process's memory: lost on restart, so only for tests and for effects that
 * are themselves in memory.
 */
export class InMemoryProcessedEvents implements ProcessedEventStore<void> {
  private readonly processed = new Set<string>();
  private readonly inFlight = new Map<string, Promise<boolean>>();

  has(consumer: string, eventId: string): boolean {
    return this.processed.has(InMemoryProcessedEvents.keyOf(consumer, eventId));
  }

  async runOnce(consumer: string, eventId: string, effect: (unit: void) => Promise<void>): Promise<boolean> {
    const key = InMemoryProcessedEvents.keyOf(consumer, eventId);
    // A concurrent delivery of the same event waits for the first one's outcome, then decides.
    for (let running = this.inFlight.get(key); running; running = this.inFlight.get(key)) {
      await running.catch(() => undefined);
    }
    if (this.processed.has(key)) return false;
    const run = (async () => {
      await effect();
      this.processed.add(key);
      return true;
    })();
    this.inFlight.set(key, run);
    try {
      return await run;
    } finally {
      this.inFlight.delete(key);
    }
  }

  private static keyOf(consumer: string, eventId: string): string {
    return `${consumer}\u0000${eventId}`;
  }
}
