import type { MigrationInterface, QueryRunner } from 'typeorm';

export class ApprovalsInitial1763800000000 implements MigrationInterface {
  readonly name = 'ApprovalsInitial1763800000000';

  async up(db: QueryRunner): Promise<void> {
    // Each request's events, sealed as they went to the log: the request's state is their fold.
    await db.query(`
      CREATE TABLE approvals.events (
        approval_id uuid NOT NULL,
        sequence integer NOT NULL CHECK (sequence >= 1),
        event jsonb NOT NULL,
        PRIMARY KEY (approval_id, sequence)
      )`);
    // The read model: one row per request, updated in the transaction that stores its events.
    await db.query(`
      CREATE TABLE approvals.requests (
        id uuid PRIMARY KEY,
        requester_id text NOT NULL,
        requester_name text NOT NULL,
        target text NOT NULL,
        masked_command text NOT NULL,
        trace_id text NOT NULL,
        session_id text NOT NULL,
        rule text NOT NULL,
        reviewer_group text NOT NULL,
        quorum integer NOT NULL CHECK (quorum >= 1),
        approvers jsonb NOT NULL DEFAULT '[]'::jsonb,
        status text NOT NULL CHECK (status IN ('pending', 'approved', 'denied', 'expired', 'withdrawn')),
        reason text NOT NULL DEFAULT '',
        decided_by jsonb,
        requested_at timestamptz NOT NULL,
        expires_at timestamptz NOT NULL,
        finished_at timestamptz,
        sequence integer NOT NULL,
        hash text NOT NULL
      )`);
    await db.query(`CREATE INDEX requests_status_idx ON approvals.requests (status, requested_at)`);
    // Where the Slack message about each request is, so its outcome updates it after a restart too.
    await db.query(`
      CREATE TABLE approvals.slack_messages (
        approval_id uuid PRIMARY KEY,
        channel text NOT NULL,
        ts text NOT NULL
      )`);
  }

  async down(db: QueryRunner): Promise<void> {
    await db.query(`DROP TABLE approvals.slack_messages`);
    await db.query(`DROP TABLE approvals.requests`);
    await db.query(`DROP TABLE approvals.events`);
  }
}
