import type { MigrationInterface, QueryRunner } from 'typeorm';

export class TracesProjection1763820000000 implements MigrationInterface {
  readonly name = 'TracesProjection1763820000000';

  async up(db: QueryRunner): Promise<void> {
    // The traces-and-grants projection's own generation: its consumer group is named after it, so
    // a fresh schema (a rebuild) reads tracegate.traces.v1 and tracegate.audit.v1 from the start.
    await db.query(`INSERT INTO audit.projection (name, generation) VALUES ('traces', gen_random_uuid())`);
  }

  async down(db: QueryRunner): Promise<void> {
    await db.query(`DELETE FROM audit.projection WHERE name = 'traces'`);
  }
}
