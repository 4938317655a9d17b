import type { MigrationInterface, QueryRunner } from 'typeorm';

export class StatementResults1763860000000 implements MigrationInterface {
  readonly name = 'StatementResults1763860000000';

  async up(db: QueryRunner): Promise<void> {
    // What the gateway records since result masking exists: the masked bind parameters, how often
    // each masking rule fired on the result, and the result's columns and how many rows were
    // recorded. Empty for statements without them (and for events written before them).
    await db.query(`ALTER TABLE audit.statements ADD COLUMN parameters jsonb NOT NULL DEFAULT '[]'`);
    await db.query(`ALTER TABLE audit.statements ADD COLUMN masked jsonb NOT NULL DEFAULT '{}'`);
    await db.query(`ALTER TABLE audit.statements ADD COLUMN result_columns text[] NOT NULL DEFAULT '{}'`);
    await db.query(`ALTER TABLE audit.statements ADD COLUMN rows_recorded integer NOT NULL DEFAULT 0`);
    // The recorded (masked) result rows, one row per dev.tracegate.session.statement_result.v1
    // chunk: written with the event's claim, so a redelivered chunk adds nothing. The rows are a
    // JSON array of arrays of text or null (SQL NULL).
    await db.query(`
      CREATE TABLE audit.statement_results (
        session_id text NOT NULL,
        statement_id text NOT NULL,
        chunk integer NOT NULL,
        event_id text NOT NULL,
        rows jsonb NOT NULL,
        PRIMARY KEY (session_id, statement_id, chunk)
      )`);
  }

  async down(db: QueryRunner): Promise<void> {
    await db.query(`DROP TABLE audit.statement_results`);
    await db.query(`ALTER TABLE audit.statements DROP COLUMN rows_recorded, DROP COLUMN result_columns, DROP COLUMN masked, DROP COLUMN parameters`);
  }
}
