import { Injectable } from '@nestjs/common';
import { brokerV1 } from '@tracegate/contracts';
import { parseSshPublicKey, sshFingerprint, SshPublicKeyError } from '@tracegate/runtime/ssh-public-key';
import { BrokerError, BrokerErrorCode } from '../errors.js';
import type { ApiKeyEntity } from '../entities/api-key.entity.js';
import type { SshKeyEntity } from '../entities/ssh-key.entity.js';
import type { AccessEvent } from '../repositories/access-event-recorder.js';
import { ApiKeyMaterial } from '../repositories/api-key-material.js';
import { ApiKeyRepository } from '../repositories/api-key.repository.js';
import { Clock } from '../repositories/clock.js';
import { identityKindFrom, identityKindOf, timestampOf } from './proto-mapping.js';

/** Key names are what clients put as the user name in `postgresql://<name>:<key>@…`. */
const KEY_NAME = /^[A-Za-z0-9][A-Za-z0-9_.@-]{0,62}$/;
const GROUP = /^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,62}$/;

/** One answer for an unknown name, a wrong key and a revoked key, so a caller cannot tell them apart. */
const NOT_AUTHENTICATED =
  'the name and API key do not match an active API key; check both, or ask an operator for a new key (`tracegate key create`)';
const PUBLIC_KEY_NOT_AUTHENTICATED =
  'the name and SSH public key do not match an active API key; check the name, or ask an operator to register the key (`tracegate key add-ssh`)';
/** `ssh-keygen -l`'s form: SHA256, then 43 characters of unpadded base64. */
const FINGERPRINT = /^SHA256:[A-Za-z0-9+/]{43}$/;

@Injectable()
export class ApiKeyIssuer {
  constructor(
    private readonly keys: ApiKeyRepository,
    private readonly material: ApiKeyMaterial,
    private readonly clock: Clock,
  ) {}

  async create(request: brokerV1.CreateKeyRequest): Promise<brokerV1.CreateKeyResponse> {
    validateKeyName(request.name);
    const kind = identityKindOf(request.kind);
    for (const group of request.groups) {
      if (!GROUP.test(group)) throw BrokerError.invalidArgument('groups', `'${group.slice(0, 80)}' is not a group name: use 1 to 63 of A-Z a-z 0-9 _ . : / -`);
    }
    const groups = [...new Set(request.groups)];
    const { keyId, apiKey, hash } = this.material.generate();
    const now = this.clock.now();
    const row: ApiKeyEntity = { id: keyId, name: request.name, kind, groups, keyHash: hash, createdAt: now, revokedAt: null };
    await this.keys.insert(row, identityEvent('dev.tracegate.identity.key_created.v1', row, now, { id: row.id, name: row.name, kind, groups }));
    return { key: toProtoKey(row), secret: apiKey };
  }

  async list(): Promise<brokerV1.ApiKey[]> {
    const [keys, sshKeys] = await Promise.all([this.keys.list(), this.keys.listSshKeys()]);
    const sshKeysOf = Map.groupBy(sshKeys, (k) => k.apiKeyId);
    return keys.map((row) => toProtoKey(row, sshKeysOf.get(row.id)));
  }

  async addSshKey(request: brokerV1.AddSshKeyRequest): Promise<brokerV1.SshKey> {
    validateKeyName(request.name);
    let publicKey;
    try {
      publicKey = parseSshPublicKey(request.publicKey);
    } catch (error) {
      if (error instanceof SshPublicKeyError) throw BrokerError.invalidArgument('public_key', `is not an OpenSSH public key line: ${error.message}`);
      throw error;
    }
    const now = this.clock.now();
    const added = await this.keys.addSshKey(request.name, (key) => {
      if (key.revokedAt) {
        throw new BrokerError(BrokerErrorCode.KeyRevoked, `API key '${key.name}' is revoked, so it takes no SSH keys; create a new key with \`tracegate key create\``);
      }
      const sshKey: SshKeyEntity = { apiKeyId: key.id, fingerprint: publicKey.fingerprint, publicKey: publicKey.line, addedAt: now };
      return { sshKey, event: identityEvent('dev.tracegate.identity.ssh_key_added.v1', key, now, { id: key.id, name: key.name, fingerprint: sshKey.fingerprint, publicKey: sshKey.publicKey }) };
    });
    return toProtoSshKey(added);
  }

  async removeSshKey(request: brokerV1.RemoveSshKeyRequest): Promise<void> {
    validateKeyName(request.name);
    if (!FINGERPRINT.test(request.fingerprint)) {
      throw BrokerError.invalidArgument('fingerprint', `'${request.fingerprint.slice(0, 80)}' is not an SSH key fingerprint: SHA256: and 43 base64 characters, as \`tracegate key list\` shows it`);
    }
    const now = this.clock.now();
    await this.keys.removeSshKey(request.name, request.fingerprint, (key) =>
      identityEvent('dev.tracegate.identity.ssh_key_removed.v1', key, now, { id: key.id, name: key.name, fingerprint: request.fingerprint }),
    );
  }

  async revoke(name: string): Promise<void> {
    const now = this.clock.now();
    await this.keys.revoke(name, now, (row) => identityEvent('dev.tracegate.identity.key_revoked.v1', row, now, { id: row.id, name: row.name }));
  }

  async authenticate(name: string, apiKey: string): Promise<brokerV1.ApiKey> {
    const row = KEY_NAME.test(name) ? await this.keys.findByName(name) : null;
    const matches = this.material.verify(apiKey, row ? { keyId: row.id, hash: row.keyHash } : undefined);
    if (!row || !matches || row.revokedAt) throw new BrokerError(BrokerErrorCode.Unauthenticated, NOT_AUTHENTICATED);
    return toProtoKey(row);
  }

  /**
   * Whose key this is. Only the blob counts (its fingerprint is the lookup): a client may name its
   * RSA key by a signature algorithm (rsa-sha2-256), and the gateway passes on what it was offered.
   */
  async authenticatePublicKey(name: string, publicKey: string): Promise<brokerV1.ApiKey> {
    const encoded = publicKey.trim().split(/[ \t]+/)[1] ?? '';
    const fingerprint = /^[A-Za-z0-9+/]+={0,2}$/.test(encoded) ? sshFingerprint(Buffer.from(encoded, 'base64')) : undefined;
    const row = fingerprint && KEY_NAME.test(name) ? await this.keys.findActiveBySshKey(name, fingerprint) : null;
    if (!row) throw new BrokerError(BrokerErrorCode.Unauthenticated, PUBLIC_KEY_NOT_AUTHENTICATED);
    return toProtoKey(row);
  }
}

function validateKeyName(name: string): void {
  if (!KEY_NAME.test(name)) {
    throw BrokerError.invalidArgument('name', `'${name.slice(0, 80)}' is not a key name: use 1 to 63 of A-Z a-z 0-9 _ . @ -, starting with a letter or digit`);
  }
}

function identityEvent(type: string, row: ApiKeyEntity, time: Date, data: Record<string, unknown>): AccessEvent {
  return { type, subject: `identities/${row.name}`, key: row.name, data, time };
}

export function toProtoKey(row: ApiKeyEntity, sshKeys: readonly SshKeyEntity[] = []): brokerV1.ApiKey {
  return {
    id: row.id,
    name: row.name,
    kind: identityKindFrom(row.kind),
    groups: [...row.groups],
    createdAt: timestampOf(row.createdAt),
    revokedAt: row.revokedAt ? timestampOf(row.revokedAt) : undefined,
    sshKeys: sshKeys.map(toProtoSshKey),
  };
}

function toProtoSshKey(row: SshKeyEntity): brokerV1.SshKey {
  return { fingerprint: row.fingerprint, publicKey: row.publicKey, addedAt: timestampOf(row.addedAt) };
}
