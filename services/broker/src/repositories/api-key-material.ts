import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/** What a caller presents: `tg_<key id>_<random part>`. */
export interface ParsedApiKey {
  readonly keyId: string;
  readonly random: string;
}

const KEY_ID_BYTES = 16;
const RANDOM_BYTES = 32;
const API_KEY = /^tg_([0-9a-f]{32})_([A-Za-z0-9_-]{43})$/;

/**
 * Makes and checks API keys. Only a SHA-256 of the random part is stored. A fast hash is the right
 * one here: the random part is 256 bits from the CSPRNG, so there is nothing to brute-force and a
 * slow password hash (scrypt, argon2) would only add latency to every login through the gateway.
 */
export class ApiKeyMaterial {
  generate(): { keyId: string; apiKey: string; hash: Buffer } {
    const keyId = randomBytes(KEY_ID_BYTES).toString('hex');
    const random = randomBytes(RANDOM_BYTES).toString('base64url');
    return { keyId, apiKey: `tg_${keyId}_${random}`, hash: hashOf(random) };
  }

  parse(apiKey: string): ParsedApiKey | undefined {
    const match = API_KEY.exec(apiKey);
    if (!match) return undefined;
    return { keyId: match[1]!, random: match[2]! };
  }

  /**
   * Whether `apiKey` is the key stored as (keyId, hash). Compares in constant time, and does the
   * same work when there is no stored key, so timing tells nothing about which names exist.
   */
  verify(apiKey: string, stored: { keyId: string; hash: Buffer } | undefined): boolean {
    const parsed = this.parse(apiKey);
    const presented = hashOf(parsed?.random ?? apiKey);
    const expected = stored?.hash.length === presented.length ? stored.hash : Buffer.alloc(presented.length);
    const hashesMatch = timingSafeEqual(presented, expected);
    return hashesMatch && parsed !== undefined && stored !== undefined && parsed.keyId === stored.keyId;
  }
}

function hashOf(random: string): Buffer {
  return createHash('sha256').update(random, 'utf8').digest();
}
