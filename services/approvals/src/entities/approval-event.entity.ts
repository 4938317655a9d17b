import { Column, Entity, PrimaryColumn } from 'typeorm';
import type { CloudEvent } from '@tracegate/events';

/** One sealed event of one request, as the log has it. */
@Entity({ schema: 'approvals', name: 'events' })
export class ApprovalEventEntity {
  @PrimaryColumn({ name: 'approval_id', type: 'uuid' })
  approvalId!: string;

  @PrimaryColumn({ type: 'integer' })
  sequence!: number;

  @Column({ type: 'jsonb' })
  event!: CloudEvent;
}
