import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { HmacSha256 } from './hmac-sha256.js';

describe('HmacSha256', () => {
  it('agrees with node:crypto for every length across the one- and two-block boundaries, and for long keys', () => {
    for (const keyLength of [32, 64, 65, 200]) {
      const key = randomBytes(keyLength);
      const mac = new HmacSha256(key);
      for (let n = 0; n <= 300; n++) {
        const bytes = randomBytes(n + 5);
        const expected = createHmac('sha256', key).update(bytes.subarray(5)).digest('hex');
        assert.equal(Buffer.from(mac.mac(bytes, 5, bytes.length)).toString('hex'), expected, `key ${keyLength} bytes, message ${n} bytes`);
      }
    }
  });

  it('matches RFC 4231 test case 2', () => {
    const mac = new HmacSha256(Buffer.from('Jefe'));
    const message = Buffer.from('what do ya want for nothing?');
    assert.equal(Buffer.from(mac.mac(message, 0, message.length)).toString('hex'), '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843');
  });
});
