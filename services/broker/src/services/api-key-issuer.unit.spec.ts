import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { brokerV1 } from '@tracegate/contracts';
import { BrokerError, BrokerErrorCode } from '../errors.js';
import { ApiKeyMaterial } from '../repositories/api-key-material.js';
import { ApiKeyIssuer } from './api-key-issuer.js';
import { fixedClock, InMemoryKeys, NOW } from './in-memory-repositories.testing.js';
import { ed25519KeyPair } from './ssh-keys.testing.js';

const { IdentityKind } = brokerV1;

function issuer() {
  const keys = new InMemoryKeys();
  return { keys, issuer: new ApiKeyIssuer(keys.asRepository(), new ApiKeyMaterial(), fixedClock) };
}

async function failure(attempt: Promise<unknown>): Promise<string> {
  try {
    await attempt;
  } catch (error) {
    assert.ok(error instanceof BrokerError);
    assert.equal(error.code, BrokerErrorCode.Unauthenticated);
    return error.message;
  }
  assert.fail('expected the authentication to fail');
}

describe('ApiKeyIssuer', () => {
  it('creates a key, stores only the SHA-256 of its random part, and records key_created without it', async () => {
    const { keys, issuer: keyIssuer } = issuer();
    const created = await keyIssuer.create({ name: 'ci-agent', kind: IdentityKind.IDENTITY_KIND_AGENT, groups: ['readers', 'ci', 'readers'] });

    const [, keyId, random] = /^tg_([0-9a-f]{32})_(.+)$/.exec(created.secret)!;
    const row = keys.rows.get('ci-agent')!;
    assert.equal(row.id, keyId);
    assert.deepEqual(row.keyHash, createHash('sha256').update(random!).digest());
    assert.deepEqual(created.key, { id: keyId, name: 'ci-agent', kind: IdentityKind.IDENTITY_KIND_AGENT, groups: ['readers', 'ci'], createdAt: { seconds: NOW.getTime() / 1000, nanos: 0 }, revokedAt: undefined, sshKeys: [] });
    assert.deepEqual(keys.events, [
      { type: 'dev.tracegate.identity.key_created.v1', subject: 'identities/ci-agent', key: 'ci-agent', time: NOW, data: { id: keyId, name: 'ci-agent', kind: 'agent', groups: ['readers', 'ci'] } },
    ]);
    const eventText = JSON.stringify(keys.events);
    assert.ok(!eventText.includes(random!) && !eventText.includes(row.keyHash.toString('hex')) && !eventText.includes(row.keyHash.toString('base64')));
  });

  it('authenticates the right key and answers every failure with the same sentence', async () => {
    const { issuer: keyIssuer } = issuer();
    const agent = await keyIssuer.create({ name: 'ci-agent', kind: IdentityKind.IDENTITY_KIND_AGENT, groups: ['readers'] });
    const human = await keyIssuer.create({ name: 'alice', kind: IdentityKind.IDENTITY_KIND_HUMAN, groups: [] });

    const key = await keyIssuer.authenticate('ci-agent', agent.secret);
    assert.deepEqual({ id: key.id, name: key.name, kind: key.kind, groups: key.groups }, { id: agent.key!.id, name: 'ci-agent', kind: IdentityKind.IDENTITY_KIND_AGENT, groups: ['readers'] });

    const messages = new Set([
      await failure(keyIssuer.authenticate('nobody', agent.secret)),
      await failure(keyIssuer.authenticate('ci-agent', human.secret)),
      await failure(keyIssuer.authenticate('ci-agent', 'tg_garbage')),
      await failure(keyIssuer.authenticate('bad name!', agent.secret)),
    ]);
    await keyIssuer.revoke('ci-agent');
    messages.add(await failure(keyIssuer.authenticate('ci-agent', agent.secret)));
    assert.equal(messages.size, 1);
  });

  it('registers SSH public keys for an identity, lists them with the key, and answers whose key it is (same sentence for every failure)', async () => {
    const { keys, issuer: keyIssuer } = issuer();
    const agent = await keyIssuer.create({ name: 'ci-agent', kind: IdentityKind.IDENTITY_KIND_AGENT, groups: ['readers'] });
    await keyIssuer.create({ name: 'alice', kind: IdentityKind.IDENTITY_KIND_HUMAN, groups: [] });
    const laptop = ed25519KeyPair('agent@laptop');
    const other = ed25519KeyPair();
    const line = laptop.publicKeyLine.replace(/ agent@laptop$/, '');

    const added = await keyIssuer.addSshKey({ name: 'ci-agent', publicKey: laptop.publicKeyLine });
    assert.match(added.fingerprint, /^SHA256:[A-Za-z0-9+/]{43}$/);
    assert.deepEqual(added, { fingerprint: added.fingerprint, publicKey: line, addedAt: { seconds: NOW.getTime() / 1000, nanos: 0 } });
    assert.deepEqual(keys.events.at(-1), {
      type: 'dev.tracegate.identity.ssh_key_added.v1',
      subject: 'identities/ci-agent',
      key: 'ci-agent',
      time: NOW,
      data: { id: agent.key!.id, name: 'ci-agent', fingerprint: added.fingerprint, publicKey: line },
    });
    const listed = await keyIssuer.list();
    assert.deepEqual(listed.map((k) => [k.name, k.sshKeys.map((s) => s.fingerprint)]), [['ci-agent', [added.fingerprint]], ['alice', []]]);

    const key = await keyIssuer.authenticatePublicKey('ci-agent', line);
    assert.deepEqual({ id: key.id, name: key.name, groups: key.groups }, { id: agent.key!.id, name: 'ci-agent', groups: ['readers'] });
    // Only the blob counts: an RSA client names its key by the signature algorithm, e.g. rsa-sha2-256.
    assert.equal((await keyIssuer.authenticatePublicKey('ci-agent', line.replace('ssh-ed25519', 'whatever'))).id, agent.key!.id);

    const messages = new Set([
      await failure(keyIssuer.authenticatePublicKey('alice', line)),
      await failure(keyIssuer.authenticatePublicKey('ci-agent', other.publicKeyLine)),
      await failure(keyIssuer.authenticatePublicKey('nobody', line)),
      await failure(keyIssuer.authenticatePublicKey('ci-agent', 'ssh-ed25519 !!!')),
      await failure(keyIssuer.authenticatePublicKey('ci-agent', '')),
    ]);
    await keyIssuer.revoke('ci-agent');
    messages.add(await failure(keyIssuer.authenticatePublicKey('ci-agent', line)));
    assert.equal(messages.size, 1, [...messages].join(' | '));
    assert.match([...messages][0]!, /SSH public key do not match an active API key/);
  });

  it('refuses a bad or duplicate SSH key, one for a revoked or unknown API key, and removes one by fingerprint', async () => {
    const { keys, issuer: keyIssuer } = issuer();
    await keyIssuer.create({ name: 'ci-agent', kind: IdentityKind.IDENTITY_KIND_AGENT, groups: [] });
    await keyIssuer.create({ name: 'gone', kind: IdentityKind.IDENTITY_KIND_AGENT, groups: [] });
    await keyIssuer.revoke('gone');
    const { publicKeyLine } = ed25519KeyPair();
    const code = (expected: BrokerErrorCode, message: RegExp) => (error: unknown) => error instanceof BrokerError && error.code === expected && message.test(error.message);

    await assert.rejects(keyIssuer.addSshKey({ name: 'ci-agent', publicKey: publicKeyLine.replace('ssh-ed25519', 'ssh-rsa') }), code(BrokerErrorCode.InvalidArgument, /^public_key is not an OpenSSH public key line: the line says ssh-rsa/));
    await assert.rejects(keyIssuer.addSshKey({ name: 'bad name', publicKey: publicKeyLine }), code(BrokerErrorCode.InvalidArgument, /^name /));
    await assert.rejects(keyIssuer.addSshKey({ name: 'nobody', publicKey: publicKeyLine }), code(BrokerErrorCode.KeyNotFound, /no API key is named 'nobody'/));
    await assert.rejects(keyIssuer.addSshKey({ name: 'gone', publicKey: publicKeyLine }), code(BrokerErrorCode.KeyRevoked, /API key 'gone' is revoked/));
    const added = await keyIssuer.addSshKey({ name: 'ci-agent', publicKey: publicKeyLine });
    await assert.rejects(keyIssuer.addSshKey({ name: 'ci-agent', publicKey: publicKeyLine }), code(BrokerErrorCode.SshKeyExists, /already registered for 'ci-agent'/));

    await assert.rejects(keyIssuer.removeSshKey({ name: 'ci-agent', fingerprint: 'MD5:aa:bb' }), code(BrokerErrorCode.InvalidArgument, /^fingerprint 'MD5:aa:bb' is not an SSH key fingerprint/));
    await keyIssuer.removeSshKey({ name: 'ci-agent', fingerprint: added.fingerprint });
    assert.deepEqual(keys.events.at(-1)!.data, { id: keys.rows.get('ci-agent')!.id, name: 'ci-agent', fingerprint: added.fingerprint });
    await assert.rejects(keyIssuer.removeSshKey({ name: 'ci-agent', fingerprint: added.fingerprint }), code(BrokerErrorCode.SshKeyNotFound, /'ci-agent' has no SSH key with fingerprint SHA256:/));
    await failure(keyIssuer.authenticatePublicKey('ci-agent', publicKeyLine));
  });

  it('records key_revoked once, and refuses bad names, kinds and groups naming the field', async () => {
    const { keys, issuer: keyIssuer } = issuer();
    await keyIssuer.create({ name: 'ci-agent', kind: IdentityKind.IDENTITY_KIND_AGENT, groups: [] });
    await keyIssuer.revoke('ci-agent');
    await keyIssuer.revoke('ci-agent');
    assert.deepEqual(keys.events.map((e) => e.type), ['dev.tracegate.identity.key_created.v1', 'dev.tracegate.identity.key_revoked.v1']);

    const field = (name: string) => (error: unknown) => error instanceof BrokerError && error.code === BrokerErrorCode.InvalidArgument && error.message.startsWith(`${name} `);
    await assert.rejects(keyIssuer.create({ name: '', kind: IdentityKind.IDENTITY_KIND_AGENT, groups: [] }), field('name'));
    await assert.rejects(keyIssuer.create({ name: 'x', kind: IdentityKind.IDENTITY_KIND_UNSPECIFIED, groups: [] }), field('kind'));
    await assert.rejects(keyIssuer.create({ name: 'x', kind: IdentityKind.IDENTITY_KIND_AGENT, groups: ['has space'] }), field('groups'));
  });
});
