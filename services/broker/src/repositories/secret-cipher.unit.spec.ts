import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { BrokerError, BrokerErrorCode } from '../errors.js';
import type { Keyring } from '../broker.config.js';
import { SecretCipher, type SealedSecret } from './secret-cipher.js';

const k1 = { id: 'k1', key: randomBytes(32) };
const k2 = { id: 'k2', key: randomBytes(32) };
const SECRET = 'correct horse battery staple ✓';

function decryptionFailure(keyId: string) {
  return (error: unknown) => {
    assert.ok(error instanceof BrokerError);
    assert.equal(error.code, BrokerErrorCode.DecryptionFailed);
    assert.match(error.message, new RegExp(`key id '${keyId}'`));
    assert.ok(!error.message.includes(SECRET), 'the message never carries the secret');
    return true;
  };
}

describe('SecretCipher', () => {
  const cipher = new SecretCipher([k1]);

  it('round-trips a secret under the current key, with a fresh 12-byte nonce each time', () => {
    const a = cipher.seal('billing', SECRET);
    const b = cipher.seal('billing', SECRET);
    assert.equal(a.keyId, 'k1');
    assert.equal(a.nonce.length, 12);
    assert.equal(a.authTag.length, 16);
    assert.notDeepEqual(a.nonce, b.nonce);
    assert.notDeepEqual(a.ciphertext, b.ciphertext);
    assert.ok(!a.ciphertext.toString('latin1').includes('correct horse'), 'the ciphertext does not contain the secret');
    assert.equal(cipher.open('billing', a), SECRET);
    assert.equal(cipher.open('billing', b), SECRET);
  });

  it('refuses a tampered ciphertext, nonce or tag', () => {
    const sealed = cipher.seal('billing', SECRET);
    const flip = (b: Buffer) => {
      const copy = Buffer.from(b);
      copy[0] = copy[0]! ^ 1;
      return copy;
    };
    const variants: SealedSecret[] = [
      { ...sealed, ciphertext: flip(sealed.ciphertext) },
      { ...sealed, nonce: flip(sealed.nonce) },
      { ...sealed, authTag: flip(sealed.authTag) },
    ];
    for (const variant of variants) assert.throws(() => cipher.open('billing', variant), decryptionFailure('k1'));
  });

  it('refuses a ciphertext moved onto another target (the name is authenticated data)', () => {
    const sealed = cipher.seal('billing', SECRET);
    assert.throws(() => cipher.open('payroll', sealed), decryptionFailure('k1'));
  });

  it('refuses a key with the right id but other material', () => {
    const sealed = cipher.seal('billing', SECRET);
    const impostor = new SecretCipher([{ id: 'k1', key: randomBytes(32) }]);
    assert.throws(() => impostor.open('billing', sealed), decryptionFailure('k1'));
  });

  it('names a key id missing from the keyring', () => {
    const sealed = cipher.seal('billing', SECRET);
    assert.throws(() => new SecretCipher([k2]).open('billing', sealed), (error: unknown) => {
      assert.ok(error instanceof BrokerError);
      assert.equal(error.code, BrokerErrorCode.DecryptionFailed);
      assert.match(error.message, /key id 'k1', which is not in TRACEGATE_BROKER_KEYS/);
      return true;
    });
  });

  it('rotates: a new first key decrypts old secrets, rewraps them, and the old key can then go', () => {
    const old = cipher.seal('billing', SECRET);
    const rotated = new SecretCipher([k2, k1] as Keyring);
    assert.equal(rotated.currentKeyId, 'k2');
    assert.equal(rotated.open('billing', old), SECRET, 'secrets under an older key still open');
    const rewrapped = rotated.rewrap('billing', old);
    assert.ok(rewrapped);
    assert.equal(rewrapped.keyId, 'k2');
    assert.equal(rotated.rewrap('billing', rewrapped), undefined, 'a secret already under the current key is left alone');
    assert.equal(new SecretCipher([k2]).open('billing', rewrapped), SECRET);
  });
});
