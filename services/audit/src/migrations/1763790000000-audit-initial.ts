import type { MigrationInterface, QueryRunner } from 'typeorm';

export class AuditInitial1763790000000 implements MigrationInterface {
  readonly name = 'AuditInitial1763790000000';

  async up(db: QueryRunner): Promise<void> {
    // Which build of the projection this schema holds. The projector's consumer group is named
    // after it, so a fresh schema (a rebuild) reads the log again from the beginning instead of
    // resuming at the positions the dropped projection had committed.
    await db.query(`
      CREATE TABLE audit.projection (
        name text PRIMARY KEY,
        generation uuid NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now()
      )`);
    await db.query(`INSERT INTO audit.projection (name, generation) VALUES ('sessions', gen_random_uuid())`);
    await db.query(`
      CREATE TABLE audit.sessions (
        id text PRIMARY KEY,
        identity_id text NOT NULL,
        identity_name text NOT NULL,
        identity_kind text NOT NULL,
        identity_groups text[] NOT NULL DEFAULT '{}',
        target text NOT NULL,
        client_address text NOT NULL,
        application_name text NOT NULL,
        protocol text NOT NULL,
        credential_lease_id text NOT NULL,
        started_at timestamptz NOT NULL,
        ended_at timestamptz,
        end_reason text NOT NULL,
        statement_count integer NOT NULL CHECK (statement_count >= 0),
        last_sequence bigint NOT NULL CHECK (last_sequence >= 0)
      )`);
    await db.query(`CREATE INDEX sessions_started_idx ON audit.sessions (started_at DESC, id DESC)`);
    await db.query(`CREATE INDEX sessions_target_idx ON audit.sessions (target, started_at DESC)`);
    await db.query(`CREATE INDEX sessions_identity_name_idx ON audit.sessions (identity_name, started_at DESC)`);
    await db.query(`CREATE INDEX sessions_identity_id_idx ON audit.sessions (identity_id, started_at DESC)`);
    await db.query(`
      CREATE TABLE audit.statements (
        session_id text NOT NULL REFERENCES audit.sessions (id),
        statement_id text NOT NULL,
        sequence integer NOT NULL CHECK (sequence >= 1),
        text text NOT NULL,
        fingerprint text NOT NULL,
        protocol text NOT NULL,
        in_multi_statement boolean NOT NULL,
        parameter_count integer NOT NULL,
        effect text NOT NULL,
        rule text NOT NULL,
        reason text NOT NULL,
        policy_version text NOT NULL,
        masking_profile text NOT NULL,
        command_tag text NOT NULL,
        rows bigint NOT NULL,
        duration_ms bigint NOT NULL,
        sqlstate text NOT NULL,
        error_message text NOT NULL,
        executed boolean NOT NULL,
        requested_at timestamptz NOT NULL,
        decided_at timestamptz,
        completed_at timestamptz,
        PRIMARY KEY (session_id, statement_id),
        UNIQUE (session_id, sequence)
      )`);
    // Kept in this schema, not beside the log, so dropping the schema forgets them too and a
    // rebuild applies every event again.
    await db.query(`
      CREATE TABLE audit.processed_events (
        event_id text PRIMARY KEY,
        type text NOT NULL,
        processed_at timestamptz NOT NULL DEFAULT now()
      )`);
  }

  async down(db: QueryRunner): Promise<void> {
    await db.query(`DROP TABLE audit.processed_events`);
    await db.query(`DROP TABLE audit.statements`);
    await db.query(`DROP TABLE audit.sessions`);
    await db.query(`DROP TABLE audit.projection`);
  }
}
