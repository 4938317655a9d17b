import { Column, Entity, PrimaryColumn } from 'typeorm';

/** A stored reasoning trace (masked). The columns beside `document` are what reads filter and policy use. */
@Entity({ schema: 'audit', name: 'traces' })
export class TraceEntity {
  @PrimaryColumn({ type: 'text' })
  id!: string;

  @Column({ type: 'text', name: 'identity_id' })
  identityId!: string;

  @Column({ type: 'text', name: 'identity_name' })
  identityName!: string;

  @Column({ type: 'text', name: 'agent_name' })
  agentName!: string;

  @Column({ type: 'text' })
  model!: string;

  @Column({ type: 'double precision' })
  confidence!: number;

  @Column({ type: 'text', array: true })
  tags!: string[];

  @Column({ type: 'text', name: 'session_id' })
  sessionId!: string;

  @Column({ type: 'integer', name: 'size_bytes' })
  sizeBytes!: number;

  /** The masked Trace, proto3 JSON mapping. */
  @Column({ type: 'jsonb' })
  document!: Record<string, unknown>;

  /** The dev.tracegate.trace.submitted.v1 event that carried it. */
  @Column({ type: 'text', name: 'event_id' })
  eventId!: string;

  @Column({ type: 'timestamptz', name: 'created_at' })
  createdAt!: Date;
}
