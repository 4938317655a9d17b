// Imported by path (`@tracegate/runtime/service-database`), not from the package index, so only
// the services that keep state in PostgreSQL load TypeORM.
import { DataSource, type MixedList, type EntitySchema } from 'typeorm';

export interface ServiceDatabaseOptions {
  readonly databaseUrl: string;
  /** The service's own schema: services can share one database (the all-in-one does) without a table name clashing. */
  readonly schema: string;
  // eslint-disable-next-line @typescript-eslint/no-unsafe-function-type -- TypeORM's own type for entity and migration classes
  readonly entities: MixedList<Function | string | EntitySchema>;
  // eslint-disable-next-line @typescript-eslint/no-unsafe-function-type
  readonly migrations: MixedList<Function | string>;
  /** Shows in pg_stat_activity. */
  readonly applicationName: string;
}

/**
 * A service's TypeORM DataSource with its migrations applied. Migrations are explicit SQL and run
 * at start; the schema is never synchronised from the entities.
 */
export async function openServiceDatabase(options: ServiceDatabaseOptions): Promise<DataSource> {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(options.schema)) throw new TypeError(`schema name '${options.schema}' must be a plain lower-case identifier`);
  const dataSource = new DataSource({
    type: 'postgres',
    url: options.databaseUrl,
    schema: options.schema,
    entities: options.entities,
    migrations: options.migrations,
    migrationsTableName: 'migrations',
    migrationsTransactionMode: 'all',
    synchronize: false,
    logging: false,
    extra: { max: 5, application_name: options.applicationName },
  });
  await dataSource.initialize();
  // Replicas starting together (the distributed mode) take turns: TypeORM does not lock its
  // migrations table, so without this two of them could both apply the same migration.
  const lockName = `tracegate.${options.schema}.migrations`;
  const lock = dataSource.createQueryRunner();
  try {
    await lock.connect();
    await lock.query(`SELECT pg_advisory_lock(hashtext($1))`, [lockName]);
    try {
      await dataSource.query(`CREATE SCHEMA IF NOT EXISTS ${options.schema}`);
      await dataSource.runMigrations();
    } finally {
      await lock.query(`SELECT pg_advisory_unlock(hashtext($1))`, [lockName]);
    }
  } catch (error) {
    await lock.release();
    await dataSource.destroy();
    throw error;
  }
  await lock.release();
  return dataSource;
}
