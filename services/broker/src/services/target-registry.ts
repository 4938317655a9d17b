import { Injectable } from '@nestjs/common';
import { brokerV1 } from '@tracegate/contracts';
import { parseSshPublicKey, SshPublicKeyError } from '@tracegate/runtime/ssh-public-key';
import { BrokerError } from '../errors.js';
import type { TargetEntity } from '../entities/target.entity.js';
import type { AccessEvent } from '../repositories/access-event-recorder.js';
import { Clock } from '../repositories/clock.js';
import { SecretCipher } from '../repositories/secret-cipher.js';
import { TargetRepository } from '../repositories/target.repository.js';
import { checkSshLoginSecret } from './ssh-login-secret.js';
import { targetTypeFrom, targetTypeOf, timestampOf, tlsModeFrom, tlsModeOf } from './proto-mapping.js';

/** Target names appear in connection URLs (`…/<target>`), so they stay URL- and shell-safe. */
const TARGET_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;
const LABEL_KEY = /^[A-Za-z0-9][A-Za-z0-9_./-]{0,62}$/;
const MAX_SECRET_BYTES = 4096;

export function validateTargetName(name: string, field = 'target.name'): void {
  if (!TARGET_NAME.test(name)) {
    throw BrokerError.invalidArgument(field, `'${name.slice(0, 80)}' is not a target name: use 1 to 63 of A-Z a-z 0-9 _ . -, starting with a letter or digit`);
  }
}

/** Registers targets and keeps their secrets sealed; secrets go in and never come out of here. */
@Injectable()
export class TargetRegistry {
  constructor(
    private readonly targets: TargetRepository,
    private readonly cipher: SecretCipher,
    private readonly clock: Clock,
  ) {}

  async add(request: brokerV1.AddTargetRequest): Promise<brokerV1.Target> {
    const target = request.target;
    if (!target) throw BrokerError.invalidArgument('target', 'is required');
    validateTargetName(target.name);
    const type = targetTypeOf(target.type);
    if (!target.host || target.host.length > 253 || /\s/.test(target.host)) throw BrokerError.invalidArgument('target.host', 'is required: a host name or IP address');
    if (!Number.isInteger(target.port) || target.port < 1 || target.port > 65535) throw BrokerError.invalidArgument('target.port', `${target.port} is not a port from 1 to 65535`);
    if (!target.user) throw BrokerError.invalidArgument('target.user', 'is required: the user the gateway logs in as');
    for (const key of Object.keys(target.labels)) {
      if (!LABEL_KEY.test(key)) throw BrokerError.invalidArgument('target.labels', `key '${key.slice(0, 80)}' is not 1 to 63 of A-Z a-z 0-9 _ . / -`);
    }
    const connection = type === 'postgres' ? postgresConnectionOf(target) : sshConnectionOf(target);
    if (type === 'postgres') {
      if (!request.secret) throw BrokerError.invalidArgument('secret', 'is required: the password the gateway logs in to the target with');
      if (Buffer.byteLength(request.secret, 'utf8') > MAX_SECRET_BYTES) throw BrokerError.invalidArgument('secret', `is longer than ${MAX_SECRET_BYTES} bytes`);
    } else {
      if (!request.secret) throw BrokerError.invalidArgument('secret', 'is required: the password or private key the gateway logs in to the target with');
      checkSshLoginSecret(request.secret);
    }

    const sealed = this.cipher.seal(target.name, request.secret);
    const now = this.clock.now();
    const row: TargetEntity = {
      name: target.name,
      type,
      host: target.host,
      port: target.port,
      database: target.database,
      user: target.user,
      ...connection,
      labels: { ...target.labels },
      createdAt: now,
      secretCiphertext: sealed.ciphertext,
      secretNonce: sealed.nonce,
      secretAuthTag: sealed.authTag,
      secretKeyId: sealed.keyId,
    };
    const described = describeTarget(row);
    await this.targets.insert(row, {
      type: 'dev.tracegate.target.added.v1',
      subject: targetSubject(row.name),
      key: row.name,
      data: { target: described, keyId: sealed.keyId },
      time: now,
    });
    return toProtoTarget(row);
  }

  async list(): Promise<brokerV1.Target[]> {
    return (await this.targets.list()).map(toProtoTarget);
  }

  async remove(name: string): Promise<void> {
    validateTargetName(name, 'name');
    const now = this.clock.now();
    await this.targets.remove(name, { type: 'dev.tracegate.target.removed.v1', subject: targetSubject(name), key: name, data: { name }, time: now });
  }

  /** Re-encrypts every secret under the keyring's first key; older keys can then be dropped. */
  async rewrapSecrets(): Promise<{ rewrapped: number; keyId: string }> {
    const now = this.clock.now();
    const rewrapped = await this.targets.rewrapAll(
      (row) => this.cipher.rewrap(row.name, sealedOf(row)),
      (row, sealed): AccessEvent => ({
        type: 'dev.tracegate.target.secret_rewrapped.v1',
        subject: targetSubject(row.name),
        key: row.name,
        data: { name: row.name, fromKeyId: row.secretKeyId, keyId: sealed.keyId },
        time: now,
      }),
    );
    return { rewrapped, keyId: this.cipher.currentKeyId };
  }
}

/** A Postgres target's server is authenticated by TLS; it has no host key. */
function postgresConnectionOf(target: brokerV1.Target): Pick<TargetEntity, 'tlsMode' | 'hostKey'> {
  if (!target.database) throw BrokerError.invalidArgument('target.database', 'is required for a postgres target');
  if (target.hostKey) throw BrokerError.invalidArgument('target.host_key', 'is for ssh targets only; a postgres target\'s server is checked through --tls verify-full');
  return { tlsMode: tlsModeOf(target.tls), hostKey: '' };
}

/** An SSH target's server is authenticated by its pinned host key; TLS and databases do not apply. */
function sshConnectionOf(target: brokerV1.Target): Pick<TargetEntity, 'tlsMode' | 'hostKey'> {
  if (target.database) throw BrokerError.invalidArgument('target.database', 'must be empty for an ssh target: it names a Postgres database');
  if (target.tls !== brokerV1.TlsMode.TLS_MODE_UNSPECIFIED) {
    throw BrokerError.invalidArgument('target.tls', 'must be unset for an ssh target: its server is authenticated by target.host_key');
  }
  if (!target.hostKey) {
    throw BrokerError.invalidArgument('target.host_key', 'is required for an ssh target: the server\'s host public key line, e.g. from `ssh-keyscan -t ed25519 <host>` or its /etc/ssh/ssh_host_ed25519_key.pub');
  }
  try {
    return { tlsMode: null, hostKey: parseSshPublicKey(target.hostKey).line };
  } catch (error) {
    if (error instanceof SshPublicKeyError) throw BrokerError.invalidArgument('target.host_key', `is not an OpenSSH public key line: ${error.message}`);
    throw error;
  }
}

export function targetSubject(name: string): string {
  return `targets/${name}`;
}

export function sealedOf(row: TargetEntity) {
  return { keyId: row.secretKeyId, nonce: row.secretNonce, ciphertext: row.secretCiphertext, authTag: row.secretAuthTag };
}

/** What events and listings may say about a target: everything but the secret. */
function describeTarget(row: TargetEntity) {
  const connection = row.type === 'postgres' ? { database: row.database, tls: row.tlsMode } : { hostKey: row.hostKey };
  return { name: row.name, type: row.type, host: row.host, port: row.port, user: row.user, ...connection, labels: row.labels };
}

export function toProtoTarget(row: TargetEntity): brokerV1.Target {
  return {
    name: row.name,
    type: targetTypeFrom(row.type),
    host: row.host,
    port: row.port,
    database: row.database,
    user: row.user,
    tls: tlsModeFrom(row.tlsMode),
    labels: { ...row.labels },
    createdAt: timestampOf(row.createdAt),
    hostKey: row.hostKey,
  };
}
