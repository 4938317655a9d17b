import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * SSH targets: a pinned host key, and no TLS mode (an SSH server is authenticated by its host key).
 * That an SSH target has a host key is checked by the registry, not here: an SSH row registered
 * before host keys existed must still be updatable (rewrapping its secret) and removable; the
 * gateway refuses it until it is re-added with a host key.
 */
export class SshTargets1764000000000 implements MigrationInterface {
  readonly name = 'SshTargets1764000000000';

  async up(db: QueryRunner): Promise<void> {
    await db.query(`ALTER TABLE broker.targets ADD COLUMN host_key text NOT NULL DEFAULT ''`);
    await db.query(`ALTER TABLE broker.targets ADD CONSTRAINT targets_host_key_only_ssh CHECK (type = 'ssh' OR host_key = '')`);
    await db.query(`ALTER TABLE broker.targets ALTER COLUMN tls_mode DROP NOT NULL`);
    await db.query(`UPDATE broker.targets SET tls_mode = NULL WHERE type = 'ssh'`);
    await db.query(`ALTER TABLE broker.targets ADD CONSTRAINT targets_tls_mode_iff_postgres CHECK ((type = 'postgres') = (tls_mode IS NOT NULL))`);
  }

  async down(db: QueryRunner): Promise<void> {
    await db.query(`ALTER TABLE broker.targets DROP CONSTRAINT targets_tls_mode_iff_postgres`);
    await db.query(`UPDATE broker.targets SET tls_mode = 'require' WHERE tls_mode IS NULL`);
    await db.query(`ALTER TABLE broker.targets ALTER COLUMN tls_mode SET NOT NULL`);
    await db.query(`ALTER TABLE broker.targets DROP CONSTRAINT targets_host_key_only_ssh`);
    await db.query(`ALTER TABLE broker.targets DROP COLUMN host_key`);
  }
}
