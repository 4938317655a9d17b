import { Inject, Injectable } from '@nestjs/common';
import type { DataSource } from 'typeorm';
import type { CloudEvent } from '@tracegate/events';
import { evolveReview, type ApprovalReview } from '../domain/approval-review.js';
import { AUDIT_DATA_SOURCE } from './audit-database.js';

/** The approval reviews projected from tracegate.approvals.v1. */
@Injectable()
export class ApprovalReviewRepository {
  constructor(@Inject(AUDIT_DATA_SOURCE) private readonly db: DataSource) {}

  /** Folds consecutive approval events in, in one transaction; events applied before change nothing. */
  applyBatch(events: readonly CloudEvent[]): Promise<void> {
    return this.db.transaction(async (manager) => {
      const ids = [...new Set(events.map((e) => e.subject))].sort();
      const rows: Record<string, unknown>[] = await manager.query(`SELECT * FROM audit.approval_reviews WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE`, [ids]);
      const reviews = new Map(rows.map((r) => [r.id as string, reviewOfRow(r)]));
      const changed = new Set<string>();
      for (const event of events) {
        const before = reviews.get(event.subject);
        const after = evolveReview(before, event);
        if (after && after !== before) {
          reviews.set(event.subject, after);
          changed.add(event.subject);
        }
      }
      if (changed.size === 0) return;
      await manager.query(
        `INSERT INTO audit.approval_reviews (id, session_id, requester, rule, reviewer_group, quorum, state, approvers, decided_by, reason, requested_at, finished_at, last_sequence)
         SELECT id, session_id, requester, rule, reviewer_group, quorum, state, approvers, decided_by, reason, requested_at, finished_at, last_sequence
           FROM jsonb_to_recordset($1::jsonb) AS r(id text, session_id text, requester text, rule text, reviewer_group text, quorum integer, state text,
                approvers text[], decided_by text, reason text, requested_at timestamptz, finished_at timestamptz, last_sequence bigint)
         ON CONFLICT (id) DO UPDATE SET session_id = EXCLUDED.session_id, requester = EXCLUDED.requester, rule = EXCLUDED.rule, reviewer_group = EXCLUDED.reviewer_group,
           quorum = EXCLUDED.quorum, state = EXCLUDED.state, approvers = EXCLUDED.approvers, decided_by = EXCLUDED.decided_by, reason = EXCLUDED.reason,
           requested_at = EXCLUDED.requested_at, finished_at = EXCLUDED.finished_at, last_sequence = EXCLUDED.last_sequence`,
        [
          JSON.stringify(
            [...changed].map((id) => {
              const r = reviews.get(id)!;
              return {
                id: r.id,
                session_id: r.sessionId,
                requester: r.requester,
                rule: r.rule,
                reviewer_group: r.reviewerGroup,
                quorum: r.quorum,
                state: r.state,
                approvers: r.approvers,
                decided_by: r.decidedBy,
                reason: r.reason,
                requested_at: r.requestedAt,
                finished_at: r.finishedAt,
                last_sequence: r.lastSequence,
              };
            }),
          ),
        ],
      );
    });
  }

  async byIds(ids: readonly string[]): Promise<Map<string, ApprovalReview>> {
    if (ids.length === 0) return new Map();
    const rows: Record<string, unknown>[] = await this.db.query(`SELECT * FROM audit.approval_reviews WHERE id = ANY($1::text[])`, [[...ids]]);
    return new Map(rows.map((r) => [r.id as string, reviewOfRow(r)]));
  }
}

function reviewOfRow(row: Record<string, unknown>): ApprovalReview {
  return {
    id: row.id as string,
    sessionId: row.session_id as string,
    requester: row.requester as string,
    rule: row.rule as string,
    reviewerGroup: row.reviewer_group as string,
    quorum: Number(row.quorum),
    state: row.state as string,
    approvers: (row.approvers as string[] | null) ?? [],
    decidedBy: row.decided_by as string,
    reason: row.reason as string,
    requestedAt: new Date(row.requested_at as string | Date),
    finishedAt: row.finished_at ? new Date(row.finished_at as string | Date) : null,
    lastSequence: Number(row.last_sequence),
  };
}
