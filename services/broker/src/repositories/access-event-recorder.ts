import { Inject, Injectable } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import { EventLogError, GENESIS, sealEvent, TOPICS, type ChainHead, type EventLog } from '@tracegate/events';
import { EVENT_LOG } from '@tracegate/runtime';
import { BrokerError, BrokerErrorCode } from '../errors.js';
import { EventChainEntity } from '../entities/event-chain.entity.js';

/** An event on the access topic, before it is sealed into its aggregate's chain. */
export interface AccessEvent {
  readonly type: string;
  /** The aggregate: `targets/billing`, `identities/ci-agent`, `leases/<id>`. */
  readonly subject: string;
  /** The record key (target or identity name): one key, one ordered partition stream. */
  readonly key: string;
  readonly data: Record<string, unknown>;
  readonly time: Date;
}

const SOURCE = '/tracegate/broker';

/**
 * Appends access events inside the transaction that makes the change they describe. The chain
 * head row is locked for the transaction, so concurrent changes to one aggregate link in order;
 * the event is acknowledged by the log before the change commits, so a change the log did not
 * take is rolled back rather than left unrecorded.
 */
@Injectable()
export class AccessEventRecorder {
  constructor(@Inject(EVENT_LOG) private readonly eventLog: EventLog) {}

  async record(manager: EntityManager, events: readonly AccessEvent[]): Promise<void> {
    for (const access of events) {
      await manager.query(
        `INSERT INTO broker.event_chains (subject, sequence, hash) VALUES ($1, 0, '') ON CONFLICT (subject) DO NOTHING`,
        [access.subject],
      );
      const chain = await manager.getRepository(EventChainEntity).findOne({
        where: { subject: access.subject },
        lock: { mode: 'pessimistic_write' },
      });
      const head: ChainHead = chain && chain.sequence > 0 ? { sequence: chain.sequence, hash: chain.hash } : GENESIS;
      const event = sealEvent({ type: access.type, subject: access.subject, source: SOURCE, data: access.data, time: access.time }, head);
      try {
        await this.eventLog.append([{ topic: TOPICS.access.name, key: access.key, event }]);
      } catch (error) {
        if (!(error instanceof EventLogError)) throw error;
        throw new BrokerError(
          BrokerErrorCode.EventLogUnavailable,
          `the event log did not record this change (${error.message}), so nothing was changed; try again once the event log is available`,
          { cause: error },
        );
      }
      await manager.update(EventChainEntity, { subject: access.subject }, { sequence: event.sequence, hash: event.hash });
    }
  }
}
