import { Column, Entity, PrimaryColumn } from 'typeorm';
import type { StatementRecord } from '../domain/session-projection.js';

/** bigint columns come back from pg as text; the values here stay far below 2^53. */
const BIGINT_AS_NUMBER = { to: (v: number) => v, from: (v: string) => Number(v) };

@Entity({ schema: 'audit', name: 'statements' })
export class StatementEntity implements StatementRecord {
  @PrimaryColumn({ type: 'text', name: 'session_id' })
  sessionId!: string;

  @PrimaryColumn({ type: 'text', name: 'statement_id' })
  statementId!: string;

  @Column({ type: 'integer' })
  sequence!: number;

  @Column({ type: 'text' })
  text!: string;

  @Column({ type: 'text' })
  fingerprint!: string;

  @Column({ type: 'text' })
  protocol!: string;

  @Column({ type: 'boolean', name: 'in_multi_statement' })
  inMultiStatement!: boolean;

  @Column({ type: 'integer', name: 'parameter_count' })
  parameterCount!: number;

  @Column({ type: 'text', name: 'trace_id' })
  traceId!: string;

  @Column({ type: 'text' })
  effect!: string;

  @Column({ type: 'text' })
  rule!: string;

  @Column({ type: 'text' })
  reason!: string;

  @Column({ type: 'text', name: 'policy_version' })
  policyVersion!: string;

  @Column({ type: 'text', name: 'masking_profile' })
  maskingProfile!: string;

  @Column({ type: 'text', name: 'approval_request_id' })
  approvalRequestId!: string;

  @Column({ type: 'text', name: 'approval_state' })
  approvalState!: string;

  @Column({ type: 'text', name: 'command_tag' })
  commandTag!: string;

  @Column({ type: 'bigint', transformer: BIGINT_AS_NUMBER })
  rows!: number;

  @Column({ type: 'bigint', name: 'duration_ms', transformer: BIGINT_AS_NUMBER })
  durationMs!: number;

  @Column({ type: 'text' })
  sqlstate!: string;

  @Column({ type: 'text', name: 'error_message' })
  errorMessage!: string;

  @Column({ type: 'boolean' })
  executed!: boolean;

  @Column({ type: 'timestamptz', name: 'requested_at' })
  requestedAt!: Date;

  @Column({ type: 'timestamptz', name: 'decided_at', nullable: true })
  decidedAt!: Date | null;

  @Column({ type: 'timestamptz', name: 'completed_at', nullable: true })
  completedAt!: Date | null;

  @Column({ type: 'jsonb' })
  parameters!: (string | null)[];

  @Column({ type: 'jsonb' })
  masked!: Record<string, number>;

  @Column({ type: 'text', array: true, name: 'result_columns' })
  resultColumns!: string[];

  @Column({ type: 'integer', name: 'rows_recorded' })
  rowsRecorded!: number;
}
