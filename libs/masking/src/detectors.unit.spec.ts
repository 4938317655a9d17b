import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DETECTOR_NAMES, DetectorSet, ibanValid, luhnValid, type DetectorName } from './detectors.js';
import { foldToAscii } from './fold.js';

/** A JWT built here, so the corpus holds no real token. */
function jwt(): string {
  const part = (o: object): string => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${part({ alg: 'HS256', typ: 'JWT' })}.${part({ sub: 'agent-7', iat: 1763790000, scope: 'read' })}.${Buffer.from('a-signature-of-32-bytes-exactly!').toString('base64url')}`;
}

const PEM = ['-----BEGIN RSA PRIVATE KEY-----', 'MIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX6Ppy1tPf9Cnzj4p4WGeKLs1Pt8Qu', 'KUpRKfFLfRYC9AIKjbJTWit+CqvjWYzvQwECAwEAAQJAIJLixBy2qpFoS4DSmoEm', '-----END RSA PRIVATE KEY-----'].join('\n');

/**
 * The corpus: for each detector, values it must find (in a sentence, as they appear in logs and
 * rows) and look-alikes it must leave alone.
 */
const CORPUS: Record<DetectorName, { positives: string[]; negatives: string[] }> = {
  email: {
    positives: ['jane.doe@example.com', 'ops+alerts@mail.example.co.uk', 'A_B-C%1@sub-domain.example.org'],
    negatives: ['user@localhost', '@handle', 'git@github', 'a..b@example.com', 'foo@bar', 'version 1.2@3'],
  },
  phone: {
    positives: ['+14155552671', '+44 20 7946 0958', '+49 (30) 1234 5678', '(415) 555-2671', '415-555-2671', '1-415-555-2671', '020 7946 0958', '+33 1 23 45 67 89'],
    negatives: ['2024-01-15', '1.2.3.4', '12345', 'order 4155552671000', '555-1234', '111-111-1111', '+0 123 456', 'v10.20.30.40', '2026-11-22 05:22:53'],
  },
  'payment-card': {
    positives: ['4111111111111111', '4111 1111 1111 1111', '5555-5555-5555-4444', '378282246310005', '3782 822463 10005', '6011111111111117', '5200828282828210'],
    negatives: ['4111111111111112', '1234567812345678', '0000000000000000', '4111 11 1111 111 1111', '9999999999999995', '20261122052253'],
  },
  iban: {
    positives: ['DE89370400440532013000', 'GB82 WEST 1234 5698 7654 32', 'FR1420041010050500013M02606', 'NL91ABNA0417164300'],
    negatives: ['DE89370400440532013001', 'XX89370400440532013000', 'GB82WEST123456987654', 'US12345678901234567890'],
  },
  'us-ssn': {
    positives: ['123-45-6789', '234 56 7890', '001-01-0001'],
    negatives: ['000-12-3456', '666-12-3456', '912-34-5678', '123-00-4567', '123-45-0000', '078-05-1120', '123-45-67890', '2024-12-3456'],
  },
  ipv4: {
    positives: ['10.0.0.1', '192.168.10.254', '8.8.8.8', '255.255.255.255'],
    negatives: ['256.1.1.1', '1.2.3', '01.02.03.04', '1.2.3.4.5', 'version 10.2.3.400'],
  },
  ipv6: {
    positives: ['2001:db8::1', 'fe80::1ff:fe23:4567:890a', '2001:0db8:85a3:0000:0000:8a2e:0370:7334', '::ffff:192.0.2.128'],
    negatives: ['12:30:45', 'std::vector', 'a::b', '::', 'de:ad:be:ef', 'ERROR::: bad'],
  },
  jwt: {
    positives: [jwt()],
    negatives: ['eyJhbGciOi', 'eyJub3Rqc29u.eyJhbGciOiJIUzI1NiJ9.c2lnbmF0dXJlLWJ5dGVz', 'eyJ.eyJ.sig'],
  },
  'private-key': {
    positives: [PEM, '-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC', '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----'],
    negatives: ['-----BEGIN PUBLIC KEY-----\nMFwwDQYJKoZIhvcNAQEBBQADSwAwSAJBAK\n-----END PUBLIC KEY-----', '-----BEGIN CERTIFICATE-----'],
  },
  'aws-access-key': {
    positives: ['AKIAIOSFODNN7EXAMPLE', 'ASIAY34FZKBOKMUTVV7A'],
    negatives: ['AKIAIOSFODNN7EXAMPL', 'AKIAIOSFODNN7EXAMPLEX', 'akiaiosfodnn7example', 'ABCDIOSFODNN7EXAMPLE'],
  },
  'github-token': {
    positives: ['ghp_0123456789abcdefghijABCDEFGHIJ012345', 'gho_ZYXWVUTSRQPONMLKJIHGFEDCBA9876543210', `github_pat_${'A1b2C3d4E5'.repeat(8)}_x`],
    negatives: ['ghp_short', 'ghx_0123456789abcdefghijABCDEFGHIJ012345', 'ghp_0123456789abcdefghijABCDEFGHIJ0123456789'],
  },
  'slack-token': {
    positives: ['xoxb-1234567890-0987654321-AbCdEfGhIjKlMnOpQrStUvWx', 'xoxp-123456789012-123456789012-123456789012-0123456789abcdef0123456789abcdef', 'https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX'],
    negatives: ['xoxb-', 'xoxz-1234567890-abc', 'https://hooks.slack.com/services/'],
  },
  'saas-token': {
    positives: ['sk_live_4eC39HqLyjWDarjtT1zdp7dc', 'AIzaSyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY', 'npm_abcdefghijklmnopqrstuvwxyz0123456789', 'glpat-abcdefghij0123456789'],
    negatives: ['sk_live_short', 'AIza-too-short', 'npm_install', 'glpat-short'],
  },
  'credential-in-url': {
    positives: ['postgres://app:s3cr3t-P4ss@db.internal:5432/billing', 'https://deploy:hunter2@example.com/repo.git', "host=db user=app password='p@ss word' dbname=x", 'Server=db;User Id=sa;Password=Pa55w0rd!;', 'PGPASSWORD=topsecret', '{"password": "hunter2hunter2"}'],
    negatives: ['postgres://app@db.internal/billing', 'https://example.com/path?q=1', 'password reset link sent', 'the password field', 'ssh://git@github.com:org/repo'],
  },
  'high-entropy-secret': {
    positives: ['wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY', 'Zq8vN3kT1pXw7LmR4sYb2HcJ9dFg6AeU', 'aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY'],
    negatives: [
      'ThisIsAVeryLongIdentifierName1',
      'src/components/UserProfile2.tsx',
      'com.example.billing.InvoiceService2',
      'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa1A',
      '0123456789012345678901234567890123',
      'the quick brown fox jumps over the lazy dog',
      'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
    ],
  },
};

function detect(name: DetectorName, text: string): string[] {
  return new DetectorSet([name]).scan(text).map((f) => text.slice(f.start, f.end));
}

describe('detector corpus', () => {
  for (const name of DETECTOR_NAMES) {
    const { positives, negatives } = CORPUS[name];
    it(`${name}: finds each positive inside a sentence`, () => {
      for (const value of positives) {
        const found = detect(name, `before ${value} after`);
        assert.equal(found.length, 1, `${name} should find ${JSON.stringify(value)}, found ${JSON.stringify(found)}`);
        // An unterminated private key (a truncated one) runs to the end of the text.
        if (name === 'private-key' && !value.includes('-----END')) assert.ok(found[0]!.startsWith(value));
        else if (name !== 'credential-in-url') assert.equal(found[0], value);
      }
    });
    it(`${name}: leaves each look-alike alone`, () => {
      for (const value of negatives) {
        assert.deepEqual(detect(name, `before ${value} after`), [], `${name} should not fire on ${JSON.stringify(value)}`);
      }
    });
  }

  it('credential-in-url reports the password only, not the URL around it', () => {
    assert.deepEqual(detect('credential-in-url', 'postgres://app:s3cr3t-P4ss@db.internal:5432/billing'), ['s3cr3t-P4ss']);
    assert.deepEqual(detect('credential-in-url', "password='p@ss word' dbname=x"), ['p@ss word']);
  });

  it('runs every detector together without double-counting a value', () => {
    const all = new DetectorSet(DETECTOR_NAMES);
    const text = `token ${jwt()} from 10.0.0.1 paid with 4111 1111 1111 1111`;
    const found = all.scan(text).map((f) => f.detector);
    assert.deepEqual(found, ['jwt', 'ipv4', 'payment-card']);
  });
});

describe('Unicode look-alikes', () => {
  const all = new DetectorSet(DETECTOR_NAMES);
  const detected = (text: string): string[] => all.scan(foldToAscii(text).text).map((f) => f.detector);

  it('fullwidth digits are still a card number', () => {
    assert.deepEqual(detected('card ４１１１ １１１１ １１１１ １１１１'), ['payment-card']);
  });
  it('a fullwidth at sign and mathematical letters are still an email', () => {
    assert.deepEqual(detected('mail jane＠example.com'), ['email']);
    assert.deepEqual(detected('mail 𝐣𝐚𝐧𝐞@example.com'), ['email']);
  });
  it('zero-width characters between digits do not break an SSN', () => {
    assert.deepEqual(detected('ssn 123\u200B-45-\u200D6789'), ['us-ssn']);
  });
  it('Cyrillic look-alike letters do not hide an AWS key', () => {
    assert.deepEqual(detected('key АKIAIOSFODNN7EXAMPLE'), ['aws-access-key']);
  });
  it('Unicode dashes and no-break spaces in a phone number', () => {
    assert.deepEqual(detected('call 415\u2011555\u20132671'), ['phone']);
    assert.deepEqual(detected('call +44\u00A020\u00A07946\u00A00958'), ['phone']);
  });
  it('maps findings back to the original characters', () => {
    const folded = foldToAscii('x ４１１１１１１１１１１１１１１１ y');
    const [finding] = all.scan(folded.text);
    assert.ok(finding);
    assert.equal(folded.starts![finding.start], 2);
    assert.equal(folded.ends![finding.end - 1], 18);
  });
});

describe('validators', () => {
  it('Luhn', () => {
    assert.equal(luhnValid('79927398713'), true);
    assert.equal(luhnValid('79927398710'), false);
  });
  it('IBAN mod 97 and country length', () => {
    assert.equal(ibanValid('GB82WEST12345698765432'), true);
    assert.equal(ibanValid('GB82WEST12345698765433'), false);
    assert.equal(ibanValid('GB82WEST1234569876543'), false);
  });
});
