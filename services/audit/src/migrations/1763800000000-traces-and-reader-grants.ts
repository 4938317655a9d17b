import type { MigrationInterface, QueryRunner } from 'typeorm';

export class TracesAndReaderGrants1763800000000 implements MigrationInterface {
  readonly name = 'TracesAndReaderGrants1763800000000';

  async up(db: QueryRunner): Promise<void> {
    // Reasoning traces, only ever stored masked. `document` is the masked Trace in the proto3
    // JSON mapping, exactly as its dev.tracegate.trace.submitted.v1 event carries it.
    await db.query(`
      CREATE TABLE audit.traces (
        id text PRIMARY KEY,
        identity_id text NOT NULL,
        identity_name text NOT NULL,
        agent_name text NOT NULL,
        model text NOT NULL,
        confidence double precision NOT NULL CHECK (confidence >= 0 AND confidence <= 1),
        tags text[] NOT NULL DEFAULT '{}',
        session_id text NOT NULL,
        size_bytes integer NOT NULL CHECK (size_bytes >= 0),
        document jsonb NOT NULL,
        event_id text NOT NULL,
        created_at timestamptz NOT NULL
      )`);
    await db.query(`CREATE INDEX traces_identity_name_idx ON audit.traces (identity_name, created_at DESC)`);
    // Where a trace was attached: a reader grant scoped by target covers the traces linked to it.
    await db.query(`
      CREATE TABLE audit.trace_links (
        trace_id text NOT NULL REFERENCES audit.traces (id),
        session_id text NOT NULL,
        target text NOT NULL,
        linked_at timestamptz NOT NULL,
        PRIMARY KEY (trace_id, session_id)
      )`);
    await db.query(`CREATE INDEX trace_links_target_idx ON audit.trace_links (target)`);
    await db.query(`
      CREATE TABLE audit.reader_grants (
        id text PRIMARY KEY,
        reader text NOT NULL,
        agent text,
        target text,
        window_from timestamptz,
        window_until timestamptz,
        expires_at timestamptz NOT NULL,
        created_at timestamptz NOT NULL,
        revoked_at timestamptz,
        reason text NOT NULL,
        CHECK ((agent IS NULL) <> (target IS NULL)),
        CHECK (window_from IS NULL OR window_until IS NULL OR window_from <= window_until),
        CHECK (expires_at > created_at)
      )`);
    await db.query(`CREATE INDEX reader_grants_reader_idx ON audit.reader_grants (reader, created_at DESC)`);
    // Chain heads of the aggregates the audit service itself writes (readers/<name> on
    // tracegate.audit.v1): the next event links to the row's hash, under a row lock.
    await db.query(`
      CREATE TABLE audit.written_event_chains (
        subject text PRIMARY KEY,
        sequence bigint NOT NULL CHECK (sequence >= 0),
        hash text NOT NULL
      )`);
  }

  async down(db: QueryRunner): Promise<void> {
    await db.query(`DROP TABLE audit.written_event_chains`);
    await db.query(`DROP TABLE audit.reader_grants`);
    await db.query(`DROP TABLE audit.trace_links`);
    await db.query(`DROP TABLE audit.traces`);
  }
}
