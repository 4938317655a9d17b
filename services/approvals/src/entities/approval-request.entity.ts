import { Column, Entity, PrimaryColumn } from 'typeorm';
import type { ApprovalStatus, IdentityRef } from '../domain/approval.js';

/** The read model of one approval request, and the row its commands lock. */
@Entity({ schema: 'approvals', name: 'requests' })
export class ApprovalRequestEntity {
  @PrimaryColumn({ type: 'uuid' })
  id!: string;

  @Column({ name: 'requester_id', type: 'text' })
  requesterId!: string;

  @Column({ name: 'requester_name', type: 'text' })
  requesterName!: string;

  @Column({ type: 'text' })
  target!: string;

  @Column({ name: 'masked_command', type: 'text' })
  maskedCommand!: string;

  @Column({ name: 'trace_id', type: 'text' })
  traceId!: string;

  @Column({ name: 'session_id', type: 'text' })
  sessionId!: string;

  @Column({ type: 'text' })
  rule!: string;

  @Column({ name: 'reviewer_group', type: 'text' })
  reviewerGroup!: string;

  @Column({ type: 'integer' })
  quorum!: number;

  @Column({ type: 'jsonb' })
  approvers!: IdentityRef[];

  @Column({ type: 'text' })
  status!: ApprovalStatus;

  @Column({ type: 'text' })
  reason!: string;

  @Column({ name: 'decided_by', type: 'jsonb', nullable: true })
  decidedBy!: IdentityRef | null;

  @Column({ name: 'requested_at', type: 'timestamptz' })
  requestedAt!: Date;

  @Column({ name: 'expires_at', type: 'timestamptz' })
  expiresAt!: Date;

  @Column({ name: 'finished_at', type: 'timestamptz', nullable: true })
  finishedAt!: Date | null;

  /** The chain head: the last event's sequence and hash, which the next event links to. */
  @Column({ type: 'integer' })
  sequence!: number;

  @Column({ type: 'text' })
  hash!: string;
}
