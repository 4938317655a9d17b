import { randomBytes } from 'node:crypto';
import { BrokerError, BrokerErrorCode } from '../errors.js';
import type { ApiKeyEntity } from '../entities/api-key.entity.js';
import type { CredentialLeaseEntity } from '../entities/credential-lease.entity.js';
import type { SshKeyEntity } from '../entities/ssh-key.entity.js';
import type { TargetEntity } from '../entities/target.entity.js';
import type { AccessEvent } from '../repositories/access-event-recorder.js';
import type { ApiKeyRepository } from '../repositories/api-key.repository.js';
import type { Clock } from '../repositories/clock.js';
import type { CredentialLeaseRepository } from '../repositories/credential-lease.repository.js';
import { SecretCipher, type SealedSecret } from '../repositories/secret-cipher.js';
import type { TargetRepository } from '../repositories/target.repository.js';

/** In-memory stand-ins for the repositories, for unit tests of the services (no I/O). */
export const NOW = new Date('2026-11-22T10:00:00.000Z');
export const fixedClock = { now: () => NOW } as Clock;
export const K1 = { id: 'k1', key: randomBytes(32) };
export const K2 = { id: 'k2', key: randomBytes(32) };
export const cipherWith = (...keys: [typeof K1, ...(typeof K1)[]]) => new SecretCipher(keys);

export class InMemoryTargets {
  readonly rows = new Map<string, TargetEntity>();
  readonly events: AccessEvent[] = [];

  async insert(row: TargetEntity, event: AccessEvent) {
    if (this.rows.has(row.name)) throw new BrokerError(BrokerErrorCode.TargetExists, `target '${row.name}' is already registered`);
    this.rows.set(row.name, row);
    this.events.push(event);
  }
  async list() {
    return [...this.rows.values()].sort((a, b) => a.name.localeCompare(b.name));
  }
  async findByName(name: string) {
    return this.rows.get(name) ?? null;
  }
  async remove(name: string, event: AccessEvent) {
    if (!this.rows.delete(name)) throw BrokerError.targetNotFound(name);
    this.events.push(event);
  }
  async rewrapAll(rewrap: (t: TargetEntity) => SealedSecret | undefined, eventFor: (t: TargetEntity, s: SealedSecret) => AccessEvent) {
    let changed = 0;
    for (const row of await this.list()) {
      const sealed = rewrap(row);
      if (!sealed) continue;
      this.events.push(eventFor(row, sealed));
      Object.assign(row, { secretCiphertext: sealed.ciphertext, secretNonce: sealed.nonce, secretAuthTag: sealed.authTag, secretKeyId: sealed.keyId });
      changed += 1;
    }
    return changed;
  }
  asRepository() {
    return this as unknown as TargetRepository;
  }
}

export class InMemoryKeys {
  readonly rows = new Map<string, ApiKeyEntity>();
  readonly events: AccessEvent[] = [];

  async insert(row: ApiKeyEntity, event: AccessEvent) {
    if (this.rows.has(row.name)) throw new BrokerError(BrokerErrorCode.KeyExists, `an API key named '${row.name}' already exists`);
    this.rows.set(row.name, row);
    this.events.push(event);
  }
  async list() {
    return [...this.rows.values()];
  }
  async findByName(name: string) {
    return this.rows.get(name) ?? null;
  }
  readonly sshKeys: SshKeyEntity[] = [];

  async listSshKeys() {
    return [...this.sshKeys];
  }
  async findActiveBySshKey(name: string, fingerprint: string) {
    const row = this.rows.get(name);
    return row && !row.revokedAt && this.sshKeys.some((k) => k.apiKeyId === row.id && k.fingerprint === fingerprint) ? row : null;
  }
  async addSshKey(name: string, sshKeyFor: (k: ApiKeyEntity) => { sshKey: SshKeyEntity; event: AccessEvent }) {
    const row = this.rows.get(name);
    if (!row) throw new BrokerError(BrokerErrorCode.KeyNotFound, `no API key is named '${name}'`);
    const { sshKey, event } = sshKeyFor(row);
    if (this.sshKeys.some((k) => k.apiKeyId === sshKey.apiKeyId && k.fingerprint === sshKey.fingerprint)) {
      throw new BrokerError(BrokerErrorCode.SshKeyExists, `this SSH key is already registered for '${name}'`);
    }
    this.sshKeys.push(sshKey);
    this.events.push(event);
    return sshKey;
  }
  async removeSshKey(name: string, fingerprint: string, eventFor: (k: ApiKeyEntity) => AccessEvent) {
    const row = this.rows.get(name);
    if (!row) throw new BrokerError(BrokerErrorCode.KeyNotFound, `no API key is named '${name}'`);
    const at = this.sshKeys.findIndex((k) => k.apiKeyId === row.id && k.fingerprint === fingerprint);
    if (at < 0) throw new BrokerError(BrokerErrorCode.SshKeyNotFound, `'${name}' has no SSH key with fingerprint ${fingerprint}`);
    this.sshKeys.splice(at, 1);
    this.events.push(eventFor(row));
  }
  async revoke(name: string, at: Date, eventFor: (k: ApiKeyEntity) => AccessEvent) {
    const row = this.rows.get(name);
    if (!row) throw new BrokerError(BrokerErrorCode.KeyNotFound, `no API key is named '${name}'`);
    if (row.revokedAt) return row;
    row.revokedAt = at;
    this.events.push(eventFor(row));
    return row;
  }
  asRepository() {
    return this as unknown as ApiKeyRepository;
  }
}

export class InMemoryLeases {
  readonly rows = new Map<string, CredentialLeaseEntity>();
  readonly events: AccessEvent[] = [];
  private next = 0;

  newId() {
    this.next += 1;
    return `00000000-0000-4000-8000-${String(this.next).padStart(12, '0')}`;
  }
  async insert(row: CredentialLeaseEntity, event: AccessEvent) {
    this.rows.set(row.id, row);
    this.events.push(event);
  }
  async release(id: string, at: Date, eventFor: (l: CredentialLeaseEntity) => AccessEvent) {
    const row = this.rows.get(id);
    if (!row) throw new BrokerError(BrokerErrorCode.LeaseNotFound, `no credential lease has id '${id}'`);
    if (row.releasedAt) return;
    row.releasedAt = at;
    this.events.push(eventFor(row));
  }
  asRepository() {
    return this as unknown as CredentialLeaseRepository;
  }
}
