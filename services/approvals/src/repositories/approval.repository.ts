import { Inject, Injectable } from '@nestjs/common';
import type { DataSource, EntityManager } from 'typeorm';
import { EventLogError, GENESIS, sealEvent, TOPICS, type ChainHead, type CloudEvent, type EventLog } from '@tracegate/events';
import { EVENT_LOG } from '@tracegate/runtime';
import { approvalEventOf, cloudEventTypeOf, evolve, NO_APPROVAL, type Approval, type ApprovalEvent, type ApprovalState, type ApprovalStatus } from '../domain/approval.js';
import { ApprovalEventEntity } from '../entities/approval-event.entity.js';
import { ApprovalRequestEntity } from '../entities/approval-request.entity.js';
import { ApprovalError, ApprovalErrorCode } from '../errors.js';
import { CHANGES_CHANNEL } from './approval-notifications.js';
import { APPROVALS_DATA_SOURCE } from './approvals-database.js';

const SOURCE = '/tracegate/approvals';

/** What a command did: the request after it, and the events it added (none when it changed nothing). */
export interface ApprovalChange {
  readonly approval: Approval;
  readonly events: readonly ApprovalEvent[];
  /** How many events the request has had: a watcher skips what it has seen. */
  readonly version: number;
}

export interface VersionedApproval {
  readonly approval: Approval;
  readonly version: number;
}

/**
 * Stores approval requests as their events. A command runs in one transaction that locks the
 * request's row, folds its stored events into the state, asks the decider, and appends the new
 * events to the event log before it commits them and the read model: an event the log did not
 * acknowledge rolls the change back, so nothing is decided that is not recorded.
 */
@Injectable()
export class ApprovalRepository {
  constructor(
    @Inject(APPROVALS_DATA_SOURCE) private readonly db: DataSource,
    @Inject(EVENT_LOG) private readonly eventLog: EventLog,
  ) {}

  /** Runs `decide` against the request's current state and stores what it returns. */
  change(id: string, decide: (state: ApprovalState) => ApprovalEvent[]): Promise<ApprovalChange> {
    return this.db.transaction(async (manager) => {
      const row = await manager.getRepository(ApprovalRequestEntity).findOne({ where: { id }, lock: { mode: 'pessimistic_write' } });
      const state = row ? await this.replay(manager, id) : NO_APPROVAL;
      let events: ApprovalEvent[];
      try {
        events = decide(state);
      } catch (error) {
        // The decider knows no id to name; the sentence the caller gets does.
        if (error instanceof ApprovalError && error.code === ApprovalErrorCode.RequestNotFound) throw ApprovalError.notFound(id);
        throw error;
      }
      let head: ChainHead = row ? { sequence: row.sequence, hash: row.hash } : GENESIS;
      let after = state;
      const sealed: CloudEvent[] = [];
      for (const event of events) {
        const cloudEvent = sealEvent({ type: cloudEventTypeOf(event), subject: id, source: SOURCE, data: event.data, time: timeOf(event) }, head);
        sealed.push(cloudEvent);
        head = { sequence: cloudEvent.sequence, hash: cloudEvent.hash };
        after = evolve(after, event);
      }
      if (after.status === 'none') throw ApprovalError.notFound(id);
      if (sealed.length === 0) return { approval: after, events, version: head.sequence };
      await this.append(id, sealed);
      await manager.getRepository(ApprovalEventEntity).save(sealed.map((event): ApprovalEventEntity => ({ approvalId: id, sequence: event.sequence, event })));
      await manager.save(ApprovalRequestEntity, rowOf(after, head));
      // Delivered when the transaction commits, to every replica listening (ApprovalNotifications).
      await manager.query(`SELECT pg_notify($1, $2)`, [CHANGES_CHANNEL, `${id}:${head.sequence}`]);
      return { approval: after, events, version: head.sequence };
    });
  }

  async find(id: string): Promise<VersionedApproval | undefined> {
    if (!UUID.test(id)) return undefined;
    const row = await this.db.getRepository(ApprovalRequestEntity).findOne({ where: { id } });
    return row ? { approval: approvalOf(row), version: row.sequence } : undefined;
  }

  /** Newest first. */
  async list(status: ApprovalStatus | undefined, limit: number): Promise<Approval[]> {
    const rows = await this.db.getRepository(ApprovalRequestEntity).find({ where: status ? { status } : {}, order: { requestedAt: 'DESC', id: 'DESC' }, take: limit });
    return rows.map(approvalOf);
  }

  /** Every request still waiting, soonest deadline first: their expiry timers are set again at start. */
  async pending(): Promise<Approval[]> {
    const rows = await this.db.getRepository(ApprovalRequestEntity).find({ where: { status: 'pending' }, order: { expiresAt: 'ASC' } });
    return rows.map(approvalOf);
  }

  private async replay(manager: EntityManager, id: string): Promise<ApprovalState> {
    const rows = await manager.getRepository(ApprovalEventEntity).find({ where: { approvalId: id }, order: { sequence: 'ASC' } });
    let state: ApprovalState = NO_APPROVAL;
    for (const row of rows) {
      const event = approvalEventOf(row.event);
      if (!event) throw new Error(`approval ${id} has a stored event of unknown type ${row.event.type} (sequence ${row.sequence})`);
      state = evolve(state, event);
    }
    return state;
  }

  private async append(id: string, events: readonly CloudEvent[]): Promise<void> {
    try {
      await this.eventLog.append(events.map((event) => ({ topic: TOPICS.approvals.name, key: id, event })));
    } catch (error) {
      if (!(error instanceof EventLogError)) throw error;
      throw new ApprovalError(
        ApprovalErrorCode.EventLogUnavailable,
        `the event log did not record this (${error.message}), so request ${id} is unchanged; try again once the event log is available`,
        { cause: error },
      );
    }
  }
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function isApprovalId(id: string): boolean {
  return UUID.test(id);
}

function timeOf(event: ApprovalEvent): Date {
  return new Date(event.type === 'requested' ? event.data.requestedAt : event.data.at);
}

function rowOf(a: Approval, head: ChainHead): ApprovalRequestEntity {
  return {
    id: a.id,
    requesterId: a.requester.id,
    requesterName: a.requester.name,
    target: a.target,
    maskedCommand: a.maskedCommand,
    traceId: a.traceId,
    sessionId: a.sessionId,
    rule: a.rule,
    reviewerGroup: a.reviewerGroup,
    quorum: a.quorum,
    approvers: [...a.approvers],
    status: a.status,
    reason: a.reason,
    decidedBy: a.decidedBy,
    requestedAt: a.requestedAt,
    expiresAt: a.expiresAt,
    finishedAt: a.finishedAt,
    sequence: head.sequence,
    hash: head.hash,
  };
}

function approvalOf(row: ApprovalRequestEntity): Approval {
  return {
    id: row.id,
    requester: { id: row.requesterId, name: row.requesterName },
    target: row.target,
    maskedCommand: row.maskedCommand,
    traceId: row.traceId,
    sessionId: row.sessionId,
    rule: row.rule,
    reviewerGroup: row.reviewerGroup,
    quorum: row.quorum,
    approvers: row.approvers,
    status: row.status,
    reason: row.reason,
    decidedBy: row.decidedBy,
    requestedAt: row.requestedAt,
    expiresAt: row.expiresAt,
    finishedAt: row.finishedAt,
  };
}
