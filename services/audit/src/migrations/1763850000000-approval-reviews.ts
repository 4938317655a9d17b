import type { MigrationInterface, QueryRunner } from 'typeorm';

export class ApprovalReviews1763850000000 implements MigrationInterface {
  readonly name = 'ApprovalReviews1763850000000';

  async up(db: QueryRunner): Promise<void> {
    // Approval requests folded from tracegate.approvals.v1, so a reviewed statement shows who
    // approved or denied it. Idempotent by the request's chain: an event at or below
    // last_sequence was applied already.
    await db.query(`
      CREATE TABLE audit.approval_reviews (
        id text PRIMARY KEY,
        session_id text NOT NULL,
        requester text NOT NULL,
        rule text NOT NULL,
        reviewer_group text NOT NULL,
        quorum integer NOT NULL,
        state text NOT NULL,
        approvers text[] NOT NULL DEFAULT '{}',
        decided_by text NOT NULL,
        reason text NOT NULL,
        requested_at timestamptz NOT NULL,
        finished_at timestamptz,
        last_sequence bigint NOT NULL
      )`);
    await db.query(`CREATE INDEX approval_reviews_session_idx ON audit.approval_reviews (session_id)`);
  }

  async down(db: QueryRunner): Promise<void> {
    await db.query(`DROP TABLE audit.approval_reviews`);
  }
}
