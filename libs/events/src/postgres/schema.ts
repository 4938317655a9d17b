import { createHash } from 'node:crypto';

const IDENTIFIER = /^[a-z_][a-z0-9_]{0,62}$/;

/** A schema name as SQL, after checking it needs no quoting rules beyond double quotes. */
export function quotedSchema(schema: string): string {
  if (!IDENTIFIER.test(schema)) {
    throw new TypeError(`schema name '${schema}' must be lower-case letters, digits and underscores, starting with a letter or underscore, at most 63 characters`);
  }
  return `"${schema}"`;
}

/**
 * A 64-bit advisory lock key for a purpose, as the decimal text `pg_advisory_*` takes for bigint.
 * Hashing the purpose (schema name included) keeps two logs in two schemas of one database
 * from locking each other out.
 */
export function advisoryLockKey(purpose: string): string {
  const digest = createHash('sha256').update(purpose).digest();
  return BigInt.asIntN(64, digest.readBigUInt64BE(0)).toString();
}
