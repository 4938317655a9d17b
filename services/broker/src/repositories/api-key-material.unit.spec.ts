import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { ApiKeyMaterial } from './api-key-material.js';

describe('ApiKeyMaterial', () => {
  const material = new ApiKeyMaterial();

  it('makes keys of the form tg_<key id>_<43 base64url chars> and stores only the SHA-256 of the random part', () => {
    const { keyId, apiKey, hash } = material.generate();
    assert.match(apiKey, /^tg_[0-9a-f]{32}_[A-Za-z0-9_-]{43}$/);
    const parsed = material.parse(apiKey);
    assert.deepEqual(parsed?.keyId, keyId);
    assert.deepEqual(hash, createHash('sha256').update(parsed!.random).digest());
    assert.ok(!hash.toString('latin1').includes(parsed!.random));
  });

  it('makes a different key every time', () => {
    const keys = new Set(Array.from({ length: 50 }, () => material.generate().apiKey));
    assert.equal(keys.size, 50);
  });

  it('verifies the right key and refuses a wrong one, another key id, a malformed one or no stored key', () => {
    const a = material.generate();
    const b = material.generate();
    const stored = { keyId: a.keyId, hash: a.hash };
    assert.equal(material.verify(a.apiKey, stored), true);
    assert.equal(material.verify(b.apiKey, stored), false, 'another key');
    assert.equal(material.verify(`tg_${b.keyId}_${material.parse(a.apiKey)!.random}`, stored), false, 'right random part under another key id');
    assert.equal(material.verify(a.apiKey.slice(0, -1), stored), false, 'truncated');
    assert.equal(material.verify('', stored), false, 'empty');
    assert.equal(material.verify(a.apiKey, undefined), false, 'no such key');
  });
});
