import type { MigrationInterface, QueryRunner } from 'typeorm';

export class SessionEventsClaim1763840000000 implements MigrationInterface {
  readonly name = 'SessionEventsClaim1763840000000';

  async up(db: QueryRunner): Promise<void> {
    // session_events holds every applied event by id already: its primary key is the claim that
    // makes a redelivery a no-op, so a second table of the same ids only cost a write per event.
    // Events applied before session_events existed have no copy; were one delivered again, evolve
    // applies it with no second effect (it is idempotent per event) and keeps its copy then.
    await db.query(`DROP TABLE audit.processed_events`);
  }

  async down(db: QueryRunner): Promise<void> {
    await db.query(`
      CREATE TABLE audit.processed_events (
        event_id text PRIMARY KEY,
        type text NOT NULL,
        processed_at timestamptz NOT NULL DEFAULT now()
      )`);
    await db.query(`INSERT INTO audit.processed_events (event_id, type) SELECT event_id, type FROM audit.session_events`);
  }
}
