import { Injectable } from '@nestjs/common';
import { brokerV1 } from '@tracegate/contracts';
import { BrokerError, BrokerErrorCode } from '../errors.js';
import type { ApiKeyEntity } from '../entities/api-key.entity.js';
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

@Injectable()
export class ApiKeyIssuer {
  constructor(
    private readonly keys: ApiKeyRepository,
    private readonly material: ApiKeyMaterial,
    private readonly clock: Clock,
  ) {}

  async create(request: brokerV1.CreateKeyRequest): Promise<brokerV1.CreateKeyResponse> {
    if (!KEY_NAME.test(request.name)) {
      throw BrokerError.invalidArgument('name', `'${request.name.slice(0, 80)}' is not a key name: use 1 to 63 of A-Z a-z 0-9 _ . @ -, starting with a letter or digit`);
    }
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
    return (await this.keys.list()).map(toProtoKey);
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
}

function identityEvent(type: string, row: ApiKeyEntity, time: Date, data: Record<string, unknown>): AccessEvent {
  return { type, subject: `identities/${row.name}`, key: row.name, data, time };
}

export function toProtoKey(row: ApiKeyEntity): brokerV1.ApiKey {
  return {
    id: row.id,
    name: row.name,
    kind: identityKindFrom(row.kind),
    groups: [...row.groups],
    createdAt: timestampOf(row.createdAt),
    revokedAt: row.revokedAt ? timestampOf(row.revokedAt) : undefined,
  };
}
