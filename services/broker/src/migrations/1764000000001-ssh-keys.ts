import type { MigrationInterface, QueryRunner } from 'typeorm';

/** Identities' SSH public keys. Keys of a revoked API key stay, as its row does, for the record. */
export class SshKeys1764000000001 implements MigrationInterface {
  readonly name = 'SshKeys1764000000001';

  async up(db: QueryRunner): Promise<void> {
    await db.query(`
      CREATE TABLE broker.ssh_keys (
        api_key_id text NOT NULL REFERENCES broker.api_keys (id),
        fingerprint text NOT NULL CHECK (fingerprint LIKE 'SHA256:%'),
        public_key text NOT NULL,
        added_at timestamptz NOT NULL,
        PRIMARY KEY (api_key_id, fingerprint)
      )`);
  }

  async down(db: QueryRunner): Promise<void> {
    await db.query(`DROP TABLE broker.ssh_keys`);
  }
}
