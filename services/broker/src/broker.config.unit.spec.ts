import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { ConfigError, loadConfig } from '@tracegate/runtime';
import { BROKER_CONFIG_SCHEMA, parseKeyring } from './broker.config.js';

const key = () => randomBytes(32).toString('base64');
const TOKEN = 'x'.repeat(32);

describe('broker configuration', () => {
  it('reads a keyring whose first key encrypts and every key decrypts', () => {
    const a = key();
    const ring = parseKeyring(`new:${a}, old:${key()}`);
    assert.deepEqual(ring.map((k) => k.id), ['new', 'old']);
    assert.deepEqual(ring[0].key, Buffer.from(a, 'base64'));
  });

  it('names every bad entry and never echoes key material', () => {
    const short = randomBytes(16).toString('base64');
    const good = key();
    assert.throws(
      () => loadConfig('tracegate broker', BROKER_CONFIG_SCHEMA, { TRACEGATE_BROKER_KEYS: `a:${good},nocolon,b:${short},a:${key()},bad id:${key()}`, TRACEGATE_INTERNAL_TOKEN: TOKEN }),
      (error: unknown) => {
        assert.ok(error instanceof ConfigError);
        assert.equal(error.problems.length, 1);
        const message = error.message;
        assert.match(message, /TRACEGATE_BROKER_KEYS: entry 2 is not of the form <key id>:<base64 of 32 random bytes>/);
        assert.match(message, /entry 3 \(key id 'b'\) is not the base64 of exactly 32 bytes/);
        assert.match(message, /entry 4 repeats key id 'a'/);
        assert.match(message, /entry 5 has key id 'bad id'/);
        assert.ok(!message.includes(short) && !message.includes(good), 'no key material in the message');
        return true;
      },
    );
  });

  it('requires both secrets, with a token of at least 32 characters, and never echoes the token', () => {
    assert.throws(() => loadConfig('tracegate broker', BROKER_CONFIG_SCHEMA, {}), (error: unknown) => {
      assert.ok(error instanceof ConfigError);
      assert.deepEqual(error.problems.map((p) => p.env), ['TRACEGATE_BROKER_KEYS', 'TRACEGATE_INTERNAL_TOKEN']);
      return true;
    });
    assert.throws(
      () => loadConfig('tracegate broker', BROKER_CONFIG_SCHEMA, { TRACEGATE_BROKER_KEYS: `k:${key()}`, TRACEGATE_INTERNAL_TOKEN: 'short-token-value' }),
      (error: unknown) => error instanceof ConfigError && /at least 32/.test(error.message) && !error.message.includes('short-token-value'),
    );
  });

  it('defaults the credential lease to 900 seconds', () => {
    const config = loadConfig('tracegate broker', BROKER_CONFIG_SCHEMA, { TRACEGATE_BROKER_KEYS: `k:${key()}`, TRACEGATE_INTERNAL_TOKEN: TOKEN });
    assert.equal(config.credentialLeaseSeconds, 900);
  });
});
