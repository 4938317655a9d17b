import { openServiceDatabase } from '@tracegate/runtime/service-database';
import { type DataSource, QueryFailedError } from 'typeorm';
import { ApiKeyEntity } from '../entities/api-key.entity.js';
import { CredentialLeaseEntity } from '../entities/credential-lease.entity.js';
import { EventChainEntity } from '../entities/event-chain.entity.js';
import { TargetEntity } from '../entities/target.entity.js';
import { BrokerInitial1763780000000 } from '../migrations/1763780000000-broker-initial.js';
import { SshTargets1764000000000 } from '../migrations/1764000000000-ssh-targets.js';
import { SshKeys1764000000001 } from '../migrations/1764000000001-ssh-keys.js';
import { SshKeyEntity } from '../entities/ssh-key.entity.js';

export const BROKER_SCHEMA = 'broker';
export const BROKER_DATA_SOURCE = Symbol('BROKER_DATA_SOURCE');

/**
 * The broker's tables live in their own schema, so the broker can share a database with the other
 * services (the all-in-one does) without any table name clashing. Migrations are explicit SQL and
 * run at start; the schema is never synchronised from the entities.
 */
export function openBrokerDatabase(databaseUrl: string): Promise<DataSource> {
  return openServiceDatabase({ databaseUrl, schema: BROKER_SCHEMA, entities: [TargetEntity, ApiKeyEntity, SshKeyEntity, CredentialLeaseEntity, EventChainEntity], migrations: [BrokerInitial1763780000000, SshTargets1764000000000, SshKeys1764000000001], applicationName: 'tracegate-broker' });
}

/** Whether a query failed on a unique constraint (SQLSTATE 23505). */
export function isUniqueViolation(error: unknown): boolean {
  return error instanceof QueryFailedError && (error.driverError as { code?: string } | undefined)?.code === '23505';
}
