import type { MigrationInterface, QueryRunner } from 'typeorm';

export class BrokerInitial1763780000000 implements MigrationInterface {
  readonly name = 'BrokerInitial1763780000000';

  async up(db: QueryRunner): Promise<void> {
    await db.query(`
      CREATE TABLE broker.targets (
        name text PRIMARY KEY,
        type text NOT NULL CHECK (type IN ('postgres', 'ssh')),
        host text NOT NULL,
        port integer NOT NULL CHECK (port BETWEEN 1 AND 65535),
        database text NOT NULL,
        "user" text NOT NULL,
        tls_mode text NOT NULL CHECK (tls_mode IN ('disable', 'require', 'verify-full')),
        labels jsonb NOT NULL DEFAULT '{}'::jsonb,
        created_at timestamptz NOT NULL,
        secret_ciphertext bytea NOT NULL,
        secret_nonce bytea NOT NULL CHECK (length(secret_nonce) = 12),
        secret_auth_tag bytea NOT NULL CHECK (length(secret_auth_tag) = 16),
        secret_key_id text NOT NULL
      )`);
    await db.query(`
      CREATE TABLE broker.api_keys (
        id text PRIMARY KEY,
        name text NOT NULL UNIQUE,
        kind text NOT NULL CHECK (kind IN ('agent', 'human', 'service')),
        groups text[] NOT NULL DEFAULT '{}',
        key_hash bytea NOT NULL CHECK (length(key_hash) = 32),
        created_at timestamptz NOT NULL,
        revoked_at timestamptz
      )`);
    await db.query(`
      CREATE TABLE broker.credential_leases (
        id uuid PRIMARY KEY,
        target text NOT NULL,
        session_id text NOT NULL,
        identity_id text NOT NULL,
        issued_at timestamptz NOT NULL,
        expires_at timestamptz NOT NULL,
        released_at timestamptz
      )`);
    await db.query(`CREATE INDEX credential_leases_target_idx ON broker.credential_leases (target)`);
    await db.query(`
      CREATE TABLE broker.event_chains (
        subject text PRIMARY KEY,
        sequence integer NOT NULL CHECK (sequence >= 0), -- 0: no event yet
        hash text NOT NULL
      )`);
  }

  async down(db: QueryRunner): Promise<void> {
    await db.query(`DROP TABLE broker.event_chains`);
    await db.query(`DROP TABLE broker.credential_leases`);
    await db.query(`DROP TABLE broker.api_keys`);
    await db.query(`DROP TABLE broker.targets`);
  }
}
