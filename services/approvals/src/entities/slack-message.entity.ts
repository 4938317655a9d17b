import { Column, Entity, PrimaryColumn } from 'typeorm';

/** The Slack message that asked reviewers about a request (chat.postMessage's channel and ts). */
@Entity({ schema: 'approvals', name: 'slack_messages' })
export class SlackMessageEntity {
  @PrimaryColumn({ name: 'approval_id', type: 'uuid' })
  approvalId!: string;

  @Column({ type: 'text' })
  channel!: string;

  @Column({ type: 'text' })
  ts!: string;
}
