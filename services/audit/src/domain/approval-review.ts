import type { CloudEvent } from '@tracegate/events';

/**
 * An approval request as the audit trail shows it beside the statement it held: who asked, who
 * reviewed, how it ended. Folded from tracegate.approvals.v1 (written by the approvals service;
 * the audit service only reads it).
 */
export interface ApprovalReview {
  readonly id: string;
  readonly sessionId: string;
  readonly requester: string;
  readonly rule: string;
  readonly reviewerGroup: string;
  readonly quorum: number;
  /** pending, approved, denied, expired or withdrawn. */
  readonly state: string;
  /** Reviewers who approved, in order. */
  readonly approvers: readonly string[];
  /** Who denied it (or withdrew it), and why it ended when not approved. */
  readonly decidedBy: string;
  readonly reason: string;
  readonly requestedAt: Date;
  readonly finishedAt: Date | null;
  /** The sequence of the last event folded in: an event at or below it was applied already. */
  readonly lastSequence: number;
}

const TYPE = /^dev\.tracegate\.approval\.([a-z_]+)\.v1$/;

/** Pure: the review after `event`, or the same object when the event was already applied or is not an approval event. */
export function evolveReview(review: ApprovalReview | undefined, event: CloudEvent): ApprovalReview | undefined {
  const kind = TYPE.exec(event.type)?.[1];
  if (!kind) return review;
  if (review && event.sequence <= review.lastSequence) return review;
  const data = (event.data ?? {}) as Record<string, unknown>;
  const str = (v: unknown) => (typeof v === 'string' ? v : '');
  const nameOf = (v: unknown) => (v && typeof v === 'object' ? str((v as { name?: unknown }).name) : '');
  const time = new Date(str(data.at) || event.time);
  const base: ApprovalReview = review ?? {
    id: event.subject,
    sessionId: '',
    requester: '',
    rule: '',
    reviewerGroup: '',
    quorum: 0,
    state: 'pending',
    approvers: [],
    decidedBy: '',
    reason: '',
    requestedAt: new Date(event.time),
    finishedAt: null,
    lastSequence: 0,
  };
  const next = { ...base, lastSequence: event.sequence };
  switch (kind) {
    case 'requested':
      return {
        ...next,
        sessionId: str(data.sessionId),
        requester: nameOf(data.requester),
        rule: str(data.rule),
        reviewerGroup: str(data.reviewerGroup),
        quorum: typeof data.quorum === 'number' ? data.quorum : 0,
        requestedAt: new Date(str(data.requestedAt) || event.time),
      };
    case 'approved': {
      const approvers = [...base.approvers, nameOf(data.reviewer)];
      const quorum = typeof data.quorum === 'number' ? data.quorum : base.quorum;
      const done = approvers.length >= quorum;
      return { ...next, approvers, quorum, state: done ? 'approved' : 'pending', finishedAt: done ? time : null };
    }
    case 'denied':
      return { ...next, state: 'denied', decidedBy: nameOf(data.reviewer), reason: str(data.reason), finishedAt: time };
    case 'expired':
      return { ...next, state: 'expired', reason: str(data.reason), finishedAt: time };
    case 'withdrawn':
      return { ...next, state: 'withdrawn', decidedBy: nameOf(data.requester), reason: str(data.reason), finishedAt: time };
    default:
      // A newer approvals service's event: its place in the chain is taken, its meaning unknown.
      return next;
  }
}
