import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseSshPublicKey, SshPublicKeyError } from './ssh-public-key.js';

// Made with ssh-keygen; the fingerprints are what `ssh-keygen -lf` printed for each.
const ED25519 = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICVXR3KhzPNQc970Vyq6sortoBAbajCkIWSZFsi/g+sh fixture-ed25519@tracegate';
const ECDSA = 'ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBCyvCHCPC/tKGqQQfQVJR4xMwaBrLOJR3l/fsvNn3IwY/rUKtyQk8iaTm3Fm8Rr8gsaQ3JLCa23gD20GJYyVYEg= fixture-ecdsa@tracegate';
const RSA = 'ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABgQDAZu3TjRhtUrfZXcJxR3thBxN/ubW/xuhiE4l0tj8oawsdF3Zb/VQPxY/B3wwrvmWRoOM4wPfsLuNob1aanuRn0w9HrVDNkIvb1lBnZFiaHxVMzV9zMZGw6YxMkoJGPTSoJyOuRD5yAOjJ2OXGQhx3LSqNm447steBZQ25/X12AophnqsHeNKSF/83/4ztz/ObucIX/tz9w/C+h2O0plorXdbRM+raWNWagE+iwReDwTMNZQJPFaNS1ZnF5Dcdb5o5q7CkVdDJ9UiySebD4zoL/adsQb9zt8we2S3z8XPdQOjkLdmatdRjEhC3d9EiG2M7RcefnzT5ZpSUn+wRvkbz/OeNeVwYRrPtbODSjcxs9xsWU9QXweuNzRgv4Dka4Hv3hEL6i/Kn8apJigYX7418OIsuxiwOCaFtZqoF671vzufjBUr6BWvSvutRl0kcKqK3ud50CYKImKzY/mGMyaXhE9Zm1S89w+RyB4gYr2FRP752Ymha78ALyV2GzSMoays= fixture-rsa@tracegate';
const RSA_1024 = 'ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQDIASH8GVIC65kiAW2S1jTiw4AEnXJwv+sBqjc+x9OfKf4qUFCK3zQ2l0XpRaGIzhbllA0OtHbUnfQIAVXGC1EZV6qpq/DxhEEgNXX6yVc2qyS7+RO1N2R0QU+uCbVZzPvt+3TbHBVNIurAwktcJ8iaJEDWvVbu7QkDWMw/jpvlQQ==';

function rejects(line: string, problem: RegExp) {
  assert.throws(
    () => parseSshPublicKey(line),
    (error: unknown) => {
      assert.ok(error instanceof SshPublicKeyError, String(error));
      assert.match(error.message, problem);
      return true;
    },
  );
}

describe('parseSshPublicKey', () => {
  it('reads ed25519, ecdsa and rsa lines, fingerprinting each as ssh-keygen -l does, and keeps the line without its comment', () => {
    const cases: [string, string, string][] = [
      [ED25519, 'ssh-ed25519', 'SHA256:dt+j3bjY5rrlB6x9HzWPNyoSzcU29ELtS1SCkQeWpxs'],
      [ECDSA, 'ecdsa-sha2-nistp256', 'SHA256:84KaAYuf7VPdmwteOwXap8A30381Sh9YCRXzBkxVf6k'],
      [RSA, 'ssh-rsa', 'SHA256:08+Gl4lshtQ25H6UULc91JYqvsWzuSDywHSPFlgcF+4'],
    ];
    for (const [line, algorithm, fingerprint] of cases) {
      const key = parseSshPublicKey(`  ${line}\n`);
      assert.equal(key.algorithm, algorithm);
      assert.equal(key.fingerprint, fingerprint);
      assert.equal(key.line, line.split(' ').slice(0, 2).join(' '));
      assert.match(key.comment, /^fixture-.*@tracegate$/);
      assert.equal(key.blob.toString('base64'), line.split(' ')[1]);
    }
    assert.equal(parseSshPublicKey(ED25519.split(' ').slice(0, 2).join('\t')).comment, '');
  });

  it('says what is wrong with a line that is not a usable key', () => {
    const [, ed25519Blob] = ED25519.split(' ') as [string, string];
    const [, ecdsaBlob] = ECDSA.split(' ') as [string, string];
    rejects('', /is empty/);
    rejects(`${ED25519}\n${ECDSA}`, /spans several lines/);
    rejects(`[db1]:2222 ${ED25519}`, /'\[db1\]:2222' is not a supported key type; the line must start with one of ssh-ed25519, /);
    rejects(`command="x" ${ED25519}`, /is not a supported key type.*options/);
    rejects(`ssh-dss ${ed25519Blob}`, /'ssh-dss' is not a supported key type/);
    rejects('ssh-ed25519', /no base64 key after the key type/);
    rejects(`ssh-ed25519 ${ed25519Blob.slice(0, -4)}`, /the key is cut short|not valid base64/);
    rejects(`ssh-ed25519 ${ed25519Blob}*`, /not valid base64/);
    rejects(`ssh-rsa ${ed25519Blob}`, /the line says ssh-rsa but the key itself is ssh-ed25519/);
    rejects(`ecdsa-sha2-nistp384 ${ecdsaBlob}`, /the line says ecdsa-sha2-nistp384 but the key itself is ecdsa-sha2-nistp256/);
    rejects(`ssh-ed25519 ${Buffer.concat([Buffer.from(ed25519Blob, 'base64'), Buffer.from([0])]).toString('base64')}`, /bytes after its last field/);
    rejects(RSA_1024, /1024-bit modulus; OpenSSH refuses RSA keys under 2048 bits/);
  });
});
