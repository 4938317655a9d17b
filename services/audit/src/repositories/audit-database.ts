import { DataSource } from 'typeorm';
import { SessionEntity } from '../entities/session.entity.js';
import { StatementEntity } from '../entities/statement.entity.js';
import { AuditInitial1763790000000 } from '../migrations/1763790000000-audit-initial.js';

export const AUDIT_SCHEMA = 'audit';
export const AUDIT_DATA_SOURCE = Symbol('AUDIT_DATA_SOURCE');
const MIGRATION_LOCK = 'tracegate.audit.migrations';

/**
 * The audit projection lives in its own schema, so it can share a database with the other
 * services (the all-in-one does). Migrations are explicit SQL and run at start; the schema is
 * never synchronised from the entities. Dropping the schema and restarting rebuilds it from the log.
 */
export async function openAuditDatabase(databaseUrl: string): Promise<DataSource> {
  const dataSource = new DataSource({
    type: 'postgres',
    url: databaseUrl,
    schema: AUDIT_SCHEMA,
    entities: [SessionEntity, StatementEntity],
    migrations: [AuditInitial1763790000000],
    migrationsTableName: 'migrations',
    migrationsTransactionMode: 'all',
    synchronize: false,
    logging: false,
    extra: { max: 5, application_name: 'tracegate-audit' },
  });
  await dataSource.initialize();
  // Replicas starting together (the distributed mode) take turns: TypeORM does not lock its
  // migrations table, so without this two of them could both apply the same migration.
  const lock = dataSource.createQueryRunner();
  try {
    await lock.connect();
    await lock.query(`SELECT pg_advisory_lock(hashtext($1))`, [MIGRATION_LOCK]);
    try {
      await dataSource.query(`CREATE SCHEMA IF NOT EXISTS ${AUDIT_SCHEMA}`);
      await dataSource.runMigrations();
    } finally {
      await lock.query(`SELECT pg_advisory_unlock(hashtext($1))`, [MIGRATION_LOCK]);
    }
  } catch (error) {
    await lock.release();
    await dataSource.destroy();
    throw error;
  }
  await lock.release();
  return dataSource;
}
