import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { brokerV1 } from '@tracegate/contracts';
import { BrokerError, BrokerErrorCode } from '../errors.js';
import { ApiKeyMaterial } from '../repositories/api-key-material.js';
import { ApiKeyIssuer } from './api-key-issuer.js';
import { fixedClock, InMemoryKeys, NOW } from './in-memory-repositories.testing.js';

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
    assert.deepEqual(created.key, { id: keyId, name: 'ci-agent', kind: IdentityKind.IDENTITY_KIND_AGENT, groups: ['readers', 'ci'], createdAt: { seconds: NOW.getTime() / 1000, nanos: 0 }, revokedAt: undefined });
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
