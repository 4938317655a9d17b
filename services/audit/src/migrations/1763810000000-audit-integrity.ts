import type { MigrationInterface, QueryRunner } from 'typeorm';

export class AuditIntegrity1763810000000 implements MigrationInterface {
  readonly name = 'AuditIntegrity1763810000000';

  async up(db: QueryRunner): Promise<void> {
    // The session events exactly as the projection received them, whatever their type. Verification
    // compares the log against this copy and both against the rows, so a change to any one of the
    // three shows; on Kafka, where reading one key means scanning a partition, it is what
    // verification and replay read.
    await db.query(`
      CREATE TABLE audit.session_events (
        event_id text PRIMARY KEY,
        session_id text NOT NULL,
        sequence bigint NOT NULL,
        type text NOT NULL,
        time timestamptz NOT NULL,
        hash text NOT NULL,
        position text NOT NULL,
        event jsonb NOT NULL
      )`);
    await db.query(`CREATE INDEX session_events_session_idx ON audit.session_events (session_id, sequence)`);
    // Signed checkpoints (dev.tracegate.checkpoint.signed.v1) as read back from tracegate.audit.v1.
    await db.query(`
      CREATE TABLE audit.checkpoints (
        id text PRIMARY KEY,
        event_id text NOT NULL UNIQUE,
        signed_at timestamptz NOT NULL,
        key_id text NOT NULL,
        event jsonb NOT NULL
      )`);
    await db.query(`
      CREATE TABLE audit.checkpoint_heads (
        checkpoint_id text NOT NULL REFERENCES audit.checkpoints (id),
        session_id text NOT NULL,
        sequence bigint NOT NULL,
        hash text NOT NULL,
        PRIMARY KEY (checkpoint_id, session_id)
      )`);
    await db.query(`CREATE INDEX checkpoint_heads_session_idx ON audit.checkpoint_heads (session_id, sequence)`);
  }

  async down(db: QueryRunner): Promise<void> {
    await db.query(`DROP TABLE audit.checkpoint_heads`);
    await db.query(`DROP TABLE audit.checkpoints`);
    await db.query(`DROP TABLE audit.session_events`);
  }
}
