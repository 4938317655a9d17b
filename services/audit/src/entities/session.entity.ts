import { Column, Entity, PrimaryColumn } from 'typeorm';
import type { SessionRecord } from '../domain/session-projection.js';

@Entity({ schema: 'audit', name: 'sessions' })
export class SessionEntity implements SessionRecord {
  @PrimaryColumn({ type: 'text' })
  id!: string;

  @Column({ type: 'text', name: 'identity_id' })
  identityId!: string;

  @Column({ type: 'text', name: 'identity_name' })
  identityName!: string;

  @Column({ type: 'text', name: 'identity_kind' })
  identityKind!: string;

  @Column({ type: 'text', name: 'identity_groups', array: true })
  identityGroups!: string[];

  @Column({ type: 'text' })
  target!: string;

  @Column({ type: 'text', name: 'client_address' })
  clientAddress!: string;

  @Column({ type: 'text', name: 'application_name' })
  applicationName!: string;

  @Column({ type: 'text' })
  protocol!: string;

  @Column({ type: 'text', name: 'credential_lease_id' })
  credentialLeaseId!: string;

  @Column({ type: 'timestamptz', name: 'started_at' })
  startedAt!: Date;

  @Column({ type: 'timestamptz', name: 'ended_at', nullable: true })
  endedAt!: Date | null;

  @Column({ type: 'text', name: 'end_reason' })
  endReason!: string;

  @Column({ type: 'integer', name: 'statement_count' })
  statementCount!: number;

  @Column({ type: 'bigint', name: 'last_sequence', transformer: { to: (v: number) => v, from: (v: string) => Number(v) } })
  lastSequence!: number;
}
