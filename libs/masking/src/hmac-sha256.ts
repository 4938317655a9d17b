import { createHash } from 'node:crypto';

/**
 * HMAC-SHA-256 (RFC 2104, FIPS 180-4) with the key's inner and outer blocks hashed once, for the
 * hash strategy's row path. node:crypto's createHmac costs about 2 µs a call whatever the input
 * (an object, a native call, a key import); most masked values are one SHA-256 block, and two
 * compressions from the saved key states cost a fraction of that. The result is the standard
 * HMAC: the unit tests hold it to node:crypto's for every length around the block boundaries.
 */
export class HmacSha256 {
  private readonly innerKeyState = new Int32Array(8);
  private readonly outerKeyState = new Int32Array(8);
  private readonly state = new Int32Array(8);
  private readonly schedule = new Int32Array(16);
  private readonly tail = new Uint8Array(128);
  /** The last MAC; overwritten by the next call. */
  readonly digest = new Uint8Array(32);

  constructor(key: Uint8Array) {
    // A key longer than a block is hashed first (RFC 2104 §2).
    const k = key.length > 64 ? createHash('sha256').update(key).digest() : key;
    const pad = new Uint8Array(64);
    for (const [value, target] of [
      [0x36, this.innerKeyState],
      [0x5c, this.outerKeyState],
    ] as const) {
      pad.fill(value);
      for (let i = 0; i < k.length; i++) pad[i] = k[i]! ^ value;
      target.set(INITIAL_STATE);
      compress(target, this.schedule, pad, 0);
    }
  }

  /** The MAC of bytes[start, end), in `digest`. */
  mac(bytes: Uint8Array, start: number, end: number): Uint8Array {
    const state = this.state;
    state.set(this.innerKeyState);
    this.finish(state, bytes, start, end, 64);
    const inner = this.tail;
    writeState(state, inner, 0);
    state.set(this.outerKeyState);
    this.finish(state, inner, 0, 32, 64);
    writeState(state, this.digest, 0);
    return this.digest;
  }

  /** Hashes bytes[start, end) into `state`, `before` bytes having been hashed already, and pads. */
  private finish(state: Int32Array, bytes: Uint8Array, start: number, end: number, before: number): void {
    let at = start;
    for (; end - at >= 64; at += 64) compress(state, this.schedule, bytes, at);
    const rest = end - at;
    // Copy the rest first: `bytes` may be `tail` itself (the outer hash of the inner digest).
    const tail = this.tail;
    if (bytes !== tail || at !== 0) for (let i = 0; i < rest; i++) tail[i] = bytes[at + i]!;
    tail[rest] = 0x80;
    const blocks = rest + 9 > 64 ? 2 : 1;
    tail.fill(0, rest + 1, blocks * 64 - 8);
    // The length in bits as a 64-bit big-endian number; values here stay far below 2^53 bits.
    const bits = (before + end - start) * 8;
    const lengthAt = blocks * 64 - 8;
    const high = Math.floor(bits / 0x100000000);
    writeWord(tail, lengthAt, high);
    writeWord(tail, lengthAt + 4, bits >>> 0);
    compress(state, this.schedule, tail, 0);
    if (blocks === 2) compress(state, this.schedule, tail, 64);
  }
}

const INITIAL_STATE = new Int32Array([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]);

const K = new Int32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
  0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
  0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
  0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);

function writeWord(out: Uint8Array, at: number, word: number): void {
  out[at] = word >>> 24;
  out[at + 1] = word >>> 16;
  out[at + 2] = word >>> 8;
  out[at + 3] = word;
}

function writeState(state: Int32Array, out: Uint8Array, at: number): void {
  for (let i = 0; i < 8; i++) writeWord(out, at + i * 4, state[i]!);
}

/**
 * One SHA-256 compression of the 64-byte block at bytes[at] into `state`. The message schedule
 * is expanded as the rounds go, in a ring of 16 words.
 */
function compress(state: Int32Array, w: Int32Array, bytes: Uint8Array, at: number): void {
  let a = state[0]!;
  let b = state[1]!;
  let c = state[2]!;
  let d = state[3]!;
  let e = state[4]!;
  let f = state[5]!;
  let g = state[6]!;
  let h = state[7]!;
  for (let i = 0; i < 64; i++) {
    let word: number;
    if (i < 16) {
      const j = at + i * 4;
      word = (bytes[j]! << 24) | (bytes[j + 1]! << 16) | (bytes[j + 2]! << 8) | bytes[j + 3]!;
    } else {
      const x = w[(i - 15) & 15]!;
      const y = w[(i - 2) & 15]!;
      const s0 = ((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3);
      const s1 = ((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10);
      word = (w[i & 15]! + s0 + w[(i - 7) & 15]! + s1) | 0;
    }
    w[i & 15] = word;
    const S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
    // Ch(e, f, g) and Maj(a, b, c) in their shorter equivalent forms.
    const t1 = (h + S1 + (g ^ (e & (f ^ g))) + K[i]! + word) | 0;
    const S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
    const t2 = (S0 + ((a & b) | (c & (a | b)))) | 0;
    h = g;
    g = f;
    f = e;
    e = (d + t1) | 0;
    d = c;
    c = b;
    b = a;
    a = (t1 + t2) | 0;
  }
  state[0] = (state[0]! + a) | 0;
  state[1] = (state[1]! + b) | 0;
  state[2] = (state[2]! + c) | 0;
  state[3] = (state[3]! + d) | 0;
  state[4] = (state[4]! + e) | 0;
  state[5] = (state[5]! + f) | 0;
  state[6] = (state[6]! + g) | 0;
  state[7] = (state[7]! + h) | 0;
}
