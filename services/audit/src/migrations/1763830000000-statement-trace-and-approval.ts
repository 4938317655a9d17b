import type { MigrationInterface, QueryRunner } from 'typeorm';

export class StatementTraceAndApproval1763830000000 implements MigrationInterface {
  readonly name = 'StatementTraceAndApproval1763830000000';

  async up(db: QueryRunner): Promise<void> {
    // What the gateway records with each statement since reasoning traces and reviews exist: the
    // trace the agent attached, and the approval request a reviewed statement was held for and how
    // that ended. Empty for statements without them (and for events written before them).
    await db.query(`ALTER TABLE audit.statements ADD COLUMN trace_id text NOT NULL DEFAULT ''`);
    await db.query(`ALTER TABLE audit.statements ADD COLUMN approval_request_id text NOT NULL DEFAULT ''`);
    await db.query(`ALTER TABLE audit.statements ADD COLUMN approval_state text NOT NULL DEFAULT ''`);
    await db.query(`CREATE INDEX statements_trace_idx ON audit.statements (trace_id) WHERE trace_id <> ''`);
  }

  async down(db: QueryRunner): Promise<void> {
    await db.query(`DROP INDEX audit.statements_trace_idx`);
    await db.query(`ALTER TABLE audit.statements DROP COLUMN approval_state, DROP COLUMN approval_request_id, DROP COLUMN trace_id`);
  }
}
