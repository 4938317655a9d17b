import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { compileProfile } from './compiled-profile.js';
import { DEFAULT_PROFILE } from './default-profile.js';

const profile = compileProfile(DEFAULT_PROFILE, { hashKey: randomBytes(32) });

/** Pushes the chunks through a fresh redactor and returns everything it let out. */
function stream(chunks: readonly (Buffer | string)[]): { out: string; hits: Record<string, number> } {
  const redactor = profile.createStreamRedactor();
  const parts = chunks.map((c) => redactor.push(c));
  parts.push(redactor.end());
  return { out: Buffer.concat(parts).toString('utf8'), hits: { ...redactor.hits() } };
}

const filler = (n: number): string => 'lorem ipsum dolor sit amet '.repeat(Math.ceil(n / 27)).slice(0, n);

describe('stream redactor', () => {
  const secret = 'postgres://app:Sup3rS3cret@db.internal/billing and card 4111 1111 1111 1111';

  it('masks a secret split across two chunks, at every split point', () => {
    const text = `${filler(2000)}${secret}\n${filler(3000)}`;
    const start = 2000;
    for (let cut = start; cut <= start + secret.length; cut += 3) {
      const { out } = stream([text.slice(0, cut), text.slice(cut)]);
      assert.doesNotMatch(out, /Sup3rS3cret|4111 1111/, `leaked with the split at ${cut}`);
      assert.ok(out.includes('[REDACTED:credential-in-url]') && out.includes('[REDACTED:payment-card]'), `not masked with the split at ${cut}`);
    }
  });

  it('passes text through unchanged otherwise, in order', () => {
    const text = filler(10_000);
    const chunks = Array.from({ length: 10 }, (_, i) => text.slice(i * 1000, (i + 1) * 1000));
    assert.equal(stream(chunks).out, text);
  });

  it('masks a secret dribbled in byte by byte, including a multi-byte look-alike split inside a character', () => {
    const bytes = Buffer.from(`x ４１１１ １１１１ １１１１ １１１１ y`, 'utf8');
    const chunks = Array.from(bytes, (b) => Buffer.of(b));
    const { out, hits } = stream(chunks);
    assert.equal(out, 'x [REDACTED:payment-card] y');
    assert.deepEqual(hits, { 'detector:payment-card': 1 });
  });

  it('holds a bounded tail only: memory stays bounded whatever the stream', () => {
    const redactor = profile.createStreamRedactor();
    let released = 0;
    for (let i = 0; i < 200; i++) released += redactor.push(filler(4096)).length;
    assert.ok(200 * 4096 - released <= 1024, `held ${200 * 4096 - released} bytes`);
  });

  it('flush releases the held tail (an interactive prompt is not kept back)', () => {
    const redactor = profile.createStreamRedactor();
    assert.equal(redactor.push('user$ ').length, 0);
    assert.equal(redactor.flush().toString(), 'user$ ');
  });

  it('a private key longer than the bound is masked from BEGIN to END', () => {
    const body = Array.from({ length: 2000 }, () => 'QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0NTY3ODkwYWJjZGVmZ2hpamts').join('\n');
    const key = `-----BEGIN PRIVATE KEY-----\n${body}\n-----END PRIVATE KEY-----`;
    const text = `before\n${key}\nafter`;
    const chunks = Array.from({ length: Math.ceil(text.length / 5000) }, (_, i) => text.slice(i * 5000, (i + 1) * 5000));
    const { out } = stream(chunks);
    assert.equal(out, 'before\n[REDACTED:private-key]\nafter');
  });
});
