import { createHmac, createSecretKey, type KeyObject } from 'node:crypto';
import { HmacSha256 } from './hmac-sha256.js';

/** How a masked value is replaced (proto tracegate.masking.v1.Strategy). */
export const STRATEGIES = ['redact', 'partial', 'hash', 'null', 'format-preserving'] as const;
export type MaskingStrategy = (typeof STRATEGIES)[number];

export function isStrategy(name: string): name is MaskingStrategy {
  return (STRATEGIES as readonly string[]).includes(name);
}

/** The fixed token of the redact strategy; detectors in free text say what they found. */
export const REDACTED = '[REDACTED]';
export function redactedToken(what?: string): string {
  return what ? `[REDACTED:${what}]` : REDACTED;
}

export const MIN_HASH_KEY_BYTES = 32;

/**
 * Applies strategies with one profile's HMAC key. Hash tokens are deterministic per key (the same
 * input always gives the same token, so joins, GROUP BY and counts still work on masked data)
 * and reveal nothing without the key.
 */
export class StrategyApplier {
  /** A KeyObject: createHmac imports a raw Buffer key on every call, which costs several times the HMAC itself. */
  private readonly hashKey: KeyObject;
  /** The hash strategy's HMAC, a third of createHmac's cost on short values (see HmacSha256). */
  private readonly tokenMac: HmacSha256;
  /** A value's UTF-8 bytes on their way into tokenMac; grows with the longest value. */
  private encoded = Buffer.allocUnsafe(256);

  constructor(hashKey: Buffer) {
    if (hashKey.length < MIN_HASH_KEY_BYTES) {
      throw new RangeError(`the masking hash key has ${hashKey.length} bytes; it needs at least ${MIN_HASH_KEY_BYTES} (generate one with \`openssl rand -base64 32\`)`);
    }
    this.hashKey = createSecretKey(hashKey);
    this.tokenMac = new HmacSha256(hashKey);
  }

  /**
   * The masked value, or null for the null strategy. `label` names what was found (a detector)
   * and goes into redaction tokens.
   */
  apply(value: string, strategy: MaskingStrategy, keepLast: number, label?: string): string | null {
    switch (strategy) {
      case 'redact':
        return redactedToken(label);
      case 'null':
        return null;
      case 'partial':
        return partial(value, keepLast);
      case 'hash':
        return this.cached('h', value, () => this.hashToken(value));
      case 'format-preserving':
        return this.cached('f', value, () => this.formatPreserving(value));
    }
  }

  /**
   * Same length and shape, other characters: letters stay letters, digits stay digits, punctuation
   * stays. An email keeps its '@', dots and top-level domain; a phone number keeps its '+' and
   * country code — so masked data still passes the application's format checks.
   */
  formatPreserving(value: string): string {
    const at = value.lastIndexOf('@');
    let keepFrom = value.length;
    let keepPrefix = 0;
    if (at > 0) keepFrom = Math.max(value.lastIndexOf('.'), at);
    else if (value.startsWith('+')) keepPrefix = countryCodeLength(value);
    const stream = this.keyStream(value, value.length);
    let out = '';
    let i = 0;
    for (const ch of value) {
      const code = ch.charCodeAt(0);
      const byte = stream[i % stream.length]!;
      if (i < keepPrefix || i >= keepFrom) out += ch;
      else if (code >= 48 && code <= 57) out += String.fromCharCode(48 + (byte % 10));
      else if (code >= 97 && code <= 122) out += String.fromCharCode(97 + (byte % 26));
      else if (code >= 65 && code <= 90) out += String.fromCharCode(65 + (byte % 26));
      else if (ch.length > 1 || code > 0x7f) out += /\p{L}/u.test(ch) ? String.fromCharCode(97 + (byte % 26)) : ch;
      else out += ch;
      i += ch.length;
    }
    return out;
  }

  /** The hash token of a value: `h_` and the first 12 bytes of its HMAC in hex. */
  private hashToken(value: string): string {
    if (this.encoded.length < value.length * 3) this.encoded = Buffer.allocUnsafe(value.length * 3);
    const n = this.encoded.write(value, 0, 'utf8');
    const mac = this.tokenMac.mac(this.encoded, 0, n);
    let token = 'h_';
    for (let i = 0; i < HASH_TOKEN_BYTES; i++) token += HEX_PAIRS[mac[i]!]!;
    return token;
  }

  /**
   * The hash token of the UTF-8 text in bytes[start, end), written as ASCII at out[at]; returns
   * where it ends (HASH_TOKEN_LENGTH later). The same token apply() gives the decoded text, made
   * without decoding it: the DataRow path of the hash strategy.
   */
  writeHashToken(bytes: Uint8Array, start: number, end: number, out: Uint8Array, at: number): number {
    const mac = this.tokenMac.mac(bytes, start, end);
    out[at] = 0x68; // h
    out[at + 1] = 0x5f; // _
    let o = at + 2;
    for (let i = 0; i < HASH_TOKEN_BYTES; i++) {
      const b = mac[i]!;
      out[o++] = HEX_DIGITS[b >> 4]!;
      out[o++] = HEX_DIGITS[b & 15]!;
    }
    return o;
  }

  /**
   * Hash and format-preserving tokens are deterministic, so repeated values (a customer's email
   * on each of their orders) are worked out once. Bounded: it is emptied when full, and only short
   * values are kept.
   */
  private readonly tokens = new Map<string, string>();

  private cached(kind: 'h' | 'f', value: string, make: () => string): string {
    if (value.length > 256) return make();
    const key = kind + value;
    let token = this.tokens.get(key);
    if (token === undefined) {
      if (this.tokens.size >= 4096) this.tokens.clear();
      token = make();
      this.tokens.set(key, token);
    }
    return token;
  }

  /** HMAC in counter mode: as many pseudo-random bytes as the value has characters. */
  private keyStream(value: string, length: number): Buffer {
    const blocks: Buffer[] = [];
    for (let counter = 0; blocks.length * 32 < length; counter++) {
      blocks.push(createHmac('sha256', this.hashKey).update(`fpe:${counter}:`).update(value, 'utf8').digest());
    }
    return blocks.length === 1 ? blocks[0]! : Buffer.concat(blocks);
  }
}

/** How many HMAC bytes a hash token shows, and its length in characters ("h_" and their hex). */
const HASH_TOKEN_BYTES = 12;
export const HASH_TOKEN_LENGTH = 2 + 2 * HASH_TOKEN_BYTES;
const HEX_DIGITS = Buffer.from('0123456789abcdef', 'latin1');
const HEX_PAIRS = Array.from({ length: 256 }, (_, b) => b.toString(16).padStart(2, '0'));

const SURROGATE = /[\uD800-\uDFFF]/;

/**
 * Keeps the last `keepLast` characters and stars the rest. Never more than half the value is
 * kept: "keep the last 4" of a 5-character value would otherwise all but reveal it.
 */
export function partial(value: string, keepLast: number): string {
  if (!SURROGATE.test(value)) {
    const keep = Math.min(keepLast, Math.floor(value.length / 2));
    return '*'.repeat(value.length - keep) + value.slice(value.length - keep);
  }
  // Characters beyond the BMP are two UTF-16 units: count and keep whole characters.
  const chars = Array.from(value);
  const keep = Math.min(keepLast, Math.floor(chars.length / 2));
  return '*'.repeat(chars.length - keep) + chars.slice(chars.length - keep).join('');
}

/** Digits of the calling code in "+CC…": ITU codes are prefix-free; 1 and 7 are one digit, common two-digit codes otherwise. */
function countryCodeLength(value: string): number {
  const digits = value.slice(1).replace(/\D.*$/, '');
  const first = digits[0];
  let n: number;
  if (first === '1' || first === '7') n = 1;
  else if (/^(2[07]|3[0-469]|4[013-9]|5[1-8]|6[0-6]|8[1246]|9[0-58])/.test(digits)) n = 2;
  else n = 3;
  return 1 + Math.min(n, digits.length);
}
