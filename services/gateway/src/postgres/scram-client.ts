import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * SCRAM-SHA-256 client (RFC 5802, RFC 7677) as PostgreSQL speaks it ("SASL Authentication"),
 * for the gateway's login to a target. No channel binding: the client-first-message says "n,,".
 *
 * A hostile target could demand an absurd PBKDF2 iteration count to burn the gateway's CPU (the
 * work happens on our side, synchronously); counts outside [MIN, MAX] are refused.
 */
export const MIN_SCRAM_ITERATIONS = 1024;
export const MAX_SCRAM_ITERATIONS = 100_000;

export class ScramError extends Error {
  override readonly name = 'ScramError';
}

export class ScramClient {
  private readonly clientNonce = randomBytes(18).toString('base64');
  private readonly clientFirstBare = `n=*,r=${this.clientNonce}`;
  private expectedServerSignature: Buffer | undefined;

  constructor(private readonly password: string) {}

  /** The SASLInitialResponse data for mechanism SCRAM-SHA-256. */
  clientFirstMessage(): Buffer {
    return Buffer.from(`n,,${this.clientFirstBare}`, 'utf8');
  }

  /** Answers AuthenticationSASLContinue with the client-final-message. */
  clientFinalMessage(serverFirst: Buffer): Buffer {
    const text = serverFirst.toString('utf8');
    const attributes = parseAttributes(text);
    const nonce = attributes.get('r');
    const salt = attributes.get('s');
    const iterations = Number(attributes.get('i'));
    if (!nonce || !nonce.startsWith(this.clientNonce) || nonce.length === this.clientNonce.length) {
      throw new ScramError('the target answered SCRAM with a nonce that does not extend ours');
    }
    if (!salt) throw new ScramError('the target sent no SCRAM salt');
    if (!Number.isInteger(iterations) || iterations < MIN_SCRAM_ITERATIONS || iterations > MAX_SCRAM_ITERATIONS) {
      throw new ScramError(
        `the target asked for ${attributes.get('i')} SCRAM iterations; the gateway accepts ${MIN_SCRAM_ITERATIONS} to ${MAX_SCRAM_ITERATIONS}`,
      );
    }
    const saltedPassword = pbkdf2Sync(this.password.normalize('NFKC'), Buffer.from(salt, 'base64'), iterations, 32, 'sha256');
    const clientKey = hmac(saltedPassword, 'Client Key');
    const storedKey = createHash('sha256').update(clientKey).digest();
    const clientFinalWithoutProof = `c=biws,r=${nonce}`;
    const authMessage = `${this.clientFirstBare},${text},${clientFinalWithoutProof}`;
    const clientSignature = hmac(storedKey, authMessage);
    const proof = Buffer.alloc(clientKey.length);
    for (let i = 0; i < proof.length; i += 1) proof[i] = clientKey[i]! ^ clientSignature[i]!;
    const serverKey = hmac(saltedPassword, 'Server Key');
    this.expectedServerSignature = hmac(serverKey, authMessage);
    return Buffer.from(`${clientFinalWithoutProof},p=${proof.toString('base64')}`, 'utf8');
  }

  /** Checks AuthenticationSASLFinal: the target proves it knew the password too. */
  verifyServerFinal(serverFinal: Buffer): void {
    const signature = parseAttributes(serverFinal.toString('utf8')).get('v');
    const expected = this.expectedServerSignature;
    if (!signature || !expected) throw new ScramError('the target sent no SCRAM server signature');
    const received = Buffer.from(signature, 'base64');
    if (received.length !== expected.length || !timingSafeEqual(received, expected)) {
      throw new ScramError('the target failed to prove it knows the password (SCRAM server signature mismatch)');
    }
  }
}

function hmac(key: Buffer, data: string): Buffer {
  return createHmac('sha256', key).update(data).digest();
}

function parseAttributes(text: string): Map<string, string> {
  const attributes = new Map<string, string>();
  for (const part of text.split(',')) {
    const eq = part.indexOf('=');
    if (eq > 0) attributes.set(part.slice(0, eq), part.slice(eq + 1));
  }
  return attributes;
}

/** PostgreSQL's MD5 password answer: "md5" + md5(md5(password + user) + salt). */
export function md5PasswordAnswer(user: string, password: string, salt: Buffer): string {
  const inner = createHash('md5').update(password + user).digest('hex');
  return `md5${createHash('md5').update(Buffer.concat([Buffer.from(inner), salt])).digest('hex')}`;
}
