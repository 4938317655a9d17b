import { DataSource, QueryFailedError } from 'typeorm';
import { ApiKeyEntity } from '../entities/api-key.entity.js';
import { CredentialLeaseEntity } from '../entities/credential-lease.entity.js';
import { EventChainEntity } from '../entities/event-chain.entity.js';
import { TargetEntity } from '../entities/target.entity.js';
import { BrokerInitial1763780000000 } from '../migrations/1763780000000-broker-initial.js';

export const BROKER_SCHEMA = 'broker';
export const BROKER_DATA_SOURCE = Symbol('BROKER_DATA_SOURCE');
const MIGRATION_LOCK = 'tracegate.broker.migrations';

/**
 * The broker's tables live in their own schema, so the broker can share a database with the other
 * services (the all-in-one does) without any table name clashing. Migrations are explicit SQL and
 * run at start; the schema is never synchronised from the entities.
 */
export async function openBrokerDatabase(databaseUrl: string): Promise<DataSource> {
  const dataSource = new DataSource({
    type: 'postgres',
    url: databaseUrl,
    schema: BROKER_SCHEMA,
    entities: [TargetEntity, ApiKeyEntity, CredentialLeaseEntity, EventChainEntity],
    migrations: [BrokerInitial1763780000000],
    migrationsTableName: 'migrations',
    migrationsTransactionMode: 'all',
    synchronize: false,
    logging: false,
    extra: { max: 5, application_name: 'tracegate-broker' },
  });
  await dataSource.initialize();
  // Replicas starting together (the distributed mode) take turns: TypeORM does not lock its
  // migrations table, so without this two of them could both apply the same migration.
  const lock = dataSource.createQueryRunner();
  try {
    await lock.connect();
    await lock.query(`SELECT pg_advisory_lock(hashtext($1))`, [MIGRATION_LOCK]);
    try {
      await dataSource.query(`CREATE SCHEMA IF NOT EXISTS ${BROKER_SCHEMA}`);
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

/** Whether a query failed on a unique constraint (SQLSTATE 23505). */
export function isUniqueViolation(error: unknown): boolean {
  return error instanceof QueryFailedError && (error.driverError as { code?: string } | undefined)?.code === '23505';
}
