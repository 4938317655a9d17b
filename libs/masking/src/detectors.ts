import { isIPv6 } from 'node:net';

/**
 * Detectors find sensitive values in free text. Each is a precise pattern plus, where the format
 * has one, a validator (Luhn, mod 97, SSN area rules…): the pattern finds candidates cheaply, the
 * validator throws out look-alikes (order numbers, dates, version strings) so that masking stays
 * trustworthy rather than noisy.
 *
 * Patterns run over ASCII text: the text redactor folds Unicode look-alikes (fullwidth digits,
 * mathematical letters, zero-width joiners) to ASCII first, so they cannot evade a detector.
 */
export const DETECTOR_NAMES = [
  'email',
  'phone',
  'payment-card',
  'iban',
  'us-ssn',
  'ipv4',
  'ipv6',
  'jwt',
  'private-key',
  'aws-access-key',
  'github-token',
  'slack-token',
  'saas-token',
  'credential-in-url',
  'high-entropy-secret',
] as const;
export type DetectorName = (typeof DETECTOR_NAMES)[number];

export function isDetectorName(name: string): name is DetectorName {
  return (DETECTOR_NAMES as readonly string[]).includes(name);
}

/** A detected value: [start, end) in the scanned text. */
export interface Finding {
  readonly detector: DetectorName;
  readonly start: number;
  readonly end: number;
}

interface Detector {
  readonly name: DetectorName;
  /** Global, sticky-free pattern; with the `d` flag when `group` names the secret part. */
  readonly pattern: RegExp;
  /** The capture group that holds the secret (1 for "password in a URL"); 0 = the whole match. */
  readonly group?: number;
  /**
   * Cheap test on the text's character counts: false means no finding is possible, so the
   * pattern is not run. It must be a necessary condition (a row skips the text on it alone).
   */
  readonly needs: (traits: TextTraits) => boolean;
  /** A second necessary condition, on the text itself (a substring the pattern cannot match without). */
  readonly hint?: (text: string) => boolean;
  /**
   * A literal every match holds, at most `within` characters after the match starts: the pattern
   * is started near each occurrence instead of at every position, and not at all past the last.
   */
  readonly anchor?: { readonly text: string; readonly within: number };
  readonly validate?: (value: string) => boolean;
}

/**
 * Character counts taken in one pass over a text: most values (names, notes, statuses) cannot
 * hold most formats, and these counts say so without running their patterns.
 */
export interface TextTraits {
  digits: number;
  upper: number;
  at: number;
  colons: number;
  dots: number;
  equals: number;
  underscores: number;
  /** The longest run of characters a token (base64, url-safe) is made of. */
  longestToken: number;
  /** The most digits in a run of digits separated by single spaces or hyphens (cards, SSNs). */
  groupedDigits: number;
  /** The most digits in a run of digits, spaces, '.', '-', '+', '(' and ')' (phone numbers). */
  phoneDigits: number;
}

/** Character classes for traitsOf: 1 digit, 2 upper, 3 lower, 4 '_', 5 '+' '/' '-', 6 '@', 7 ':', 8 '.', 9 '=', 0 anything else. */
const CHAR_CLASS = new Uint8Array(128);
for (let c = 48; c <= 57; c++) CHAR_CLASS[c] = 1;
for (let c = 65; c <= 90; c++) CHAR_CLASS[c] = 2;
for (let c = 97; c <= 122; c++) CHAR_CLASS[c] = 3;
CHAR_CLASS[95] = 4;
CHAR_CLASS[43] = CHAR_CLASS[47] = CHAR_CLASS[45] = 5;
CHAR_CLASS[64] = 6;
CHAR_CLASS[58] = 7;
CHAR_CLASS[46] = 8;
CHAR_CLASS[61] = 9;
/** What a character does to the digit runs: 1 digit, 2 a card/SSN separator (space, '-'), 3 phone-only punctuation ('.', '+', '(', ')'), 0 ends both runs. */
const RUN_CLASS = new Uint8Array(128);
for (let c = 48; c <= 57; c++) RUN_CLASS[c] = 1;
RUN_CLASS[32] = RUN_CLASS[45] = 2;
RUN_CLASS[46] = RUN_CLASS[43] = RUN_CLASS[40] = RUN_CLASS[41] = 3;

const counts = new Int32Array(10);

/**
 * The traits last counted: one object, overwritten by the next count (a text's traits are used
 * before the next text is counted), so counting a value allocates nothing.
 */
const lastTraits: TextTraits = { digits: 0, upper: 0, underscores: 0, at: 0, colons: 0, dots: 0, equals: 0, longestToken: 0, groupedDigits: 0, phoneDigits: 0 };

/** traitsOf's loop is written out twice, for strings and for bytes: a call per character would cost more than the counting. */
function traitsFrom(counts: Int32Array, longest: number, grouped: number, phone: number): TextTraits {
  lastTraits.digits = counts[1]!;
  lastTraits.upper = counts[2]!;
  lastTraits.underscores = counts[4]!;
  lastTraits.at = counts[6]!;
  lastTraits.colons = counts[7]!;
  lastTraits.dots = counts[8]!;
  lastTraits.equals = counts[9]!;
  lastTraits.longestToken = longest;
  lastTraits.groupedDigits = grouped;
  lastTraits.phoneDigits = phone;
  return lastTraits;
}

export function traitsOf(text: string): TextTraits {
  counts.fill(0);
  let token = 0;
  let longest = 0;
  let grouped = 0;
  let groupedMax = 0;
  let phone = 0;
  let phoneMax = 0;
  // The previous character was a digit: a single separator keeps a card's run going.
  let afterDigit = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    const k = c < 128 ? CHAR_CLASS[c]! : 0;
    counts[k]!++;
    // Classes 1–5 are the characters tokens (base64, url-safe) are made of.
    if (k !== 0 && k <= 5) {
      if (++token > longest) longest = token;
    } else token = 0;
    const r = c < 128 ? RUN_CLASS[c]! : 0;
    if (r === 1) {
      if (++grouped > groupedMax) groupedMax = grouped;
      if (++phone > phoneMax) phoneMax = phone;
      afterDigit = true;
      continue;
    }
    if (r === 0) phone = 0;
    if (r !== 2 || !afterDigit) grouped = 0;
    afterDigit = false;
  }
  return traitsFrom(counts, longest, groupedMax, phoneMax);
}

/**
 * The traits of bytes[start, end) read as ASCII text, or undefined when a byte is not ASCII (such
 * text is decoded and folded before detection, which can add digits and letters). traitsOf's loop.
 */
export function asciiTraitsOf(bytes: Uint8Array, start: number, end: number): TextTraits | undefined {
  return byteTraitsOf(bytes, start, end, true);
}

/** The traits of bytes[start, end) read as latin1 text (a byte above 0x7f counts as "anything else"). */
export function latin1TraitsOf(bytes: Uint8Array, start: number, end: number): TextTraits {
  return byteTraitsOf(bytes, start, end, false)!;
}

function byteTraitsOf(bytes: Uint8Array, start: number, end: number, asciiOnly: boolean): TextTraits | undefined {
  counts.fill(0);
  let token = 0;
  let longest = 0;
  let grouped = 0;
  let groupedMax = 0;
  let phone = 0;
  let phoneMax = 0;
  let afterDigit = false;
  for (let i = start; i < end; i++) {
    let c = bytes[i]!;
    if (c >= 128) {
      if (asciiOnly) return undefined;
      // Class 0 in both tables, as traitsOf counts any character beyond ASCII.
      c = 0;
    }
    const k = CHAR_CLASS[c]!;
    counts[k]!++;
    if (k !== 0 && k <= 5) {
      if (++token > longest) longest = token;
    } else token = 0;
    const r = RUN_CLASS[c]!;
    if (r === 1) {
      if (++grouped > groupedMax) groupedMax = grouped;
      if (++phone > phoneMax) phoneMax = phone;
      afterDigit = true;
      continue;
    }
    if (r === 0) phone = 0;
    if (r !== 2 || !afterDigit) grouped = 0;
    afterDigit = false;
  }
  return traitsFrom(counts, longest, groupedMax, phoneMax);
}

// ---- validators -------------------------------------------------------------------------------

/** Luhn checksum over the digits of a candidate card number. */
export function luhnValid(digits: string): boolean {
  let sum = 0;
  let double = false;
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = digits.charCodeAt(i) - 48;
    if (double) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    double = !double;
  }
  return sum % 10 === 0;
}

/** Issuer prefixes and lengths of the card networks in use (Visa, Mastercard, Amex, Discover, JCB, Diners, UnionPay, Maestro). */
function cardIssuerValid(digits: string): boolean {
  const n = digits.length;
  if (/^4/.test(digits)) return n === 13 || n === 16 || n === 19;
  if (/^(5[1-5]|2(2[2-9]|[3-6]\d|7[01]|720))/.test(digits)) return n === 16;
  if (/^3[47]/.test(digits)) return n === 15;
  if (/^(6011|65|64[4-9])/.test(digits)) return n >= 16 && n <= 19;
  if (/^35(2[89]|[3-8]\d)/.test(digits)) return n >= 16 && n <= 19;
  if (/^3(0[0-5]|[689])/.test(digits)) return n >= 14 && n <= 19;
  if (/^62/.test(digits)) return n >= 16 && n <= 19;
  if (/^(5[06-9]|6\d)/.test(digits)) return n >= 12 && n <= 19;
  return false;
}

function paymentCardValid(value: string): boolean {
  const digits = value.replace(/[ -]/g, '');
  // Separators, when present, must be consistent (4111 1111 1111 1111, not 41-1111 11 1).
  if (/[ -]/.test(value) && !/^\d{4}([ -])\d{4,6}\1\d{4,5}(\1\d{1,4})?$/.test(value) && !/^\d{4}([ -]\d{4}){3}$/.test(value)) return false;
  return digits.length >= 12 && digits.length <= 19 && cardIssuerValid(digits) && luhnValid(digits);
}

/** IBAN lengths per country (ISO 13616 registry) for the countries that use one. */
const IBAN_LENGTHS: Readonly<Record<string, number>> = {
  AD: 24, AE: 23, AL: 28, AT: 20, AZ: 28, BA: 20, BE: 16, BG: 22, BH: 22, BR: 29, BY: 28, CH: 21, CR: 22, CY: 28,
  CZ: 24, DE: 22, DK: 18, DO: 28, EE: 20, EG: 29, ES: 24, FI: 18, FO: 18, FR: 27, GB: 22, GE: 22, GI: 23, GL: 18,
  GR: 27, GT: 28, HR: 21, HU: 28, IE: 22, IL: 23, IQ: 23, IS: 26, IT: 27, JO: 30, KW: 30, KZ: 20, LB: 28, LC: 32,
  LI: 21, LT: 20, LU: 20, LV: 21, MC: 27, MD: 24, ME: 22, MK: 19, MR: 27, MT: 31, MU: 30, NL: 18, NO: 15, PK: 24,
  PL: 28, PS: 29, PT: 25, QA: 29, RO: 24, RS: 22, SA: 24, SC: 31, SE: 24, SI: 19, SK: 24, SM: 27, ST: 25, SV: 28,
  TL: 23, TN: 24, TR: 26, UA: 29, VA: 22, VG: 24, XK: 20,
};

export function ibanValid(value: string): boolean {
  const iban = value.replace(/ /g, '').toUpperCase();
  const expected = IBAN_LENGTHS[iban.slice(0, 2)];
  if (expected === undefined || iban.length !== expected) return false;
  const rearranged = iban.slice(4) + iban.slice(0, 4);
  let remainder = 0;
  for (const ch of rearranged) {
    const code = ch.charCodeAt(0);
    const digits = code >= 65 ? String(code - 55) : ch;
    for (const d of digits) remainder = (remainder * 10 + (d.charCodeAt(0) - 48)) % 97;
  }
  return remainder === 1;
}

/** SSA rules: no area 000, 666 or 900–999, no group 00, no serial 0000; and not the numbers printed in advertising. */
function ssnValid(value: string): boolean {
  const digits = value.replace(/[ -]/g, '');
  const area = Number(digits.slice(0, 3));
  const group = Number(digits.slice(3, 5));
  const serial = Number(digits.slice(5));
  if (area === 0 || area === 666 || area >= 900 || group === 0 || serial === 0) return false;
  return digits !== '078051120' && digits !== '219099999';
}

function phoneValid(value: string): boolean {
  const digits = value.replace(/\D/g, '');
  if (value.startsWith('+')) return digits.length >= 8 && digits.length <= 15 && digits[0] !== '0';
  // National forms: ten digits (NANP: area and exchange codes do not start with 0 or 1) or a
  // trunk-prefixed European number of 10–11 digits.
  if (digits.startsWith('0')) return digits.length >= 10 && digits.length <= 11 && digits[1] !== '0';
  const nanp = digits.length === 11 && digits[0] === '1' ? digits.slice(1) : digits;
  return nanp.length === 10 && /^[2-9]\d{2}[2-9]/.test(nanp) && !/^(\d)\1+$/.test(nanp);
}

function ipv4Valid(value: string): boolean {
  // A leading zero is how version strings and OIDs look, not how addresses are written.
  return value.split('.').every((octet) => octet === '0' || !octet.startsWith('0'));
}

function ipv6Valid(value: string): boolean {
  if (!isIPv6(value)) return false;
  // "::", "::1" or a C++ scope like "a::b" is not an address anyone hides: require substance.
  if (value.includes('.')) return true;
  return value.replace(/:/g, '').length >= 4;
}

function jwtValid(value: string): boolean {
  const [header] = value.split('.');
  try {
    const decoded = JSON.parse(Buffer.from(header!, 'base64url').toString('utf8')) as unknown;
    return typeof decoded === 'object' && decoded !== null && ('alg' in decoded || 'typ' in decoded);
  } catch {
    return false;
  }
}

/** Shannon entropy in bits per character. */
export function shannonEntropy(value: string): number {
  // Candidates are ASCII (the pattern's alphabet): count in a typed array, not a Map.
  const counts = new Uint16Array(128);
  for (let i = 0; i < value.length; i++) counts[value.charCodeAt(i) & 127]!++;
  let entropy = 0;
  for (const count of counts) {
    if (count === 0) continue;
    const p = count / value.length;
    entropy -= p * Math.log2(p);
  }
  return entropy;
}

/** The entropy a random secret of this length reaches with room to spare; identifiers and words fall short. */
export const HIGH_ENTROPY_THRESHOLD = 4.0;

function highEntropyValid(value: string): boolean {
  if (!/[a-z]/.test(value) || !/[A-Z]/.test(value) || !/\d/.test(value)) return false;
  // Paths, dotted names and identifiers in camelCase are long and mixed, but split into words.
  if (/[/.]/.test(value) && value.split(/[/.]/).every((part) => /^[A-Za-z][a-z]*\d*$/.test(part) || part === '')) return false;
  // Identifiers read as words (camelCase, PascalCase); random strings have no long lower-case runs.
  const wordy = (value.match(/[A-Z]?[a-z]{2,}/g) ?? []).reduce((n, word) => n + word.length, 0);
  if (wordy / value.length > 0.6) return false;
  const digits = value.replace(/\D/g, '').length;
  if (digits / value.length > 0.8) return false;
  const threshold = value.length < 24 ? HIGH_ENTROPY_THRESHOLD + 0.2 : HIGH_ENTROPY_THRESHOLD;
  return shannonEntropy(value) >= threshold;
}

// ---- detectors --------------------------------------------------------------------------------

/** The keywords of credential-in-url's key-value form, as substrings (pgpassword and passwd hold "pass"). */
const CREDENTIAL_KEYWORD = /pass|pwd|secret|api|token/i;

const DETECTORS: readonly Detector[] = [
  {
    name: 'private-key',
    // An unterminated block (a truncated key) is a secret too: it runs to the end of the text.
    pattern: /-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----(?:[\s\S]*?-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----|[\s\S]*$)/g,
    needs: (x) => x.upper >= 10,
    hint: (t) => t.includes('PRIVATE KEY'),
    anchor: { text: '-----BEGIN ', within: 0 },
  },
  {
    name: 'jwt',
    pattern: /(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{16,}(?![A-Za-z0-9_-])/g,
    needs: (x) => x.dots >= 2,
    anchor: { text: 'eyJ', within: 0 },
    validate: jwtValid,
  },
  {
    name: 'credential-in-url',
    // scheme://user:PASSWORD@host, and password=… / pwd=… in key-value connection strings, "password": "…" in JSON.
    pattern: /(?:\b[a-zA-Z][a-zA-Z0-9+.-]*:\/\/[^\s:/@'"]*:([^\s@/'"]+)@|\b(?:password|passwd|pwd|pgpassword|secret|api[_-]?key|access[_-]?token)["']?\s*[=:]\s*(?!\s)("[^"]*"|'[^']*'|[^\s;&,'"]+))/dgi,
    group: -1,
    // A URL's password follows "://" and a ':'; a key-value one follows '=' or ':' after a keyword.
    needs: (x) => x.equals > 0 || x.colons > 0,
    hint: (t) => t.includes('://') || CREDENTIAL_KEYWORD.test(t),
  },
  {
    name: 'aws-access-key',
    pattern: /(?<![A-Z0-9])(?:AKIA|ASIA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|ABIA|ACCA)[A-Z0-9]{16}(?![A-Z0-9])/g,
    needs: (x) => x.upper >= 4 && x.upper + x.digits >= 20,
    hint: (t) => /A[KSGIRNBC][A-Z]A/.test(t),
  },
  {
    name: 'github-token',
    pattern: /(?<![A-Za-z0-9_])(?:gh[pousr]_[A-Za-z0-9]{36}|github_pat_[A-Za-z0-9_]{82})(?![A-Za-z0-9_])/g,
    needs: (x) => x.underscores > 0 && x.longestToken >= 40,
    // Both forms start with 'g' (ghp_…, github_pat_…).
    hint: (t) => t.includes('gh') || t.includes('github_pat_'),
    anchor: { text: 'g', within: 0 },
  },
  {
    name: 'slack-token',
    pattern: /(?<![A-Za-z0-9-])(?:xox[abposre]-\d+-[A-Za-z0-9-]{10,}|xapp-\d-[A-Z0-9]+-\d+-[a-f0-9]+|https:\/\/hooks\.slack\.com\/services\/T[A-Z0-9]+\/B[A-Z0-9]+\/[A-Za-z0-9]{16,})/g,
    needs: (x) => x.longestToken >= 10,
    hint: (t) => t.includes('xox') || t.includes('xapp-') || t.includes('hooks.slack.com'),
  },
  {
    name: 'saas-token',
    // Stripe, Google API, OpenAI, Anthropic, npm, PyPI, GitLab, SendGrid, Twilio.
    pattern: /(?<![A-Za-z0-9_-])(?:[sr]k_(?:live|test)_[A-Za-z0-9]{16,}|AIza[0-9A-Za-z_-]{35}|sk-(?:proj-|ant-[a-z0-9]+-)?[A-Za-z0-9_-]{32,}|npm_[A-Za-z0-9]{36}|pypi-AgEIcHlwaS5vcmc[A-Za-z0-9_-]{50,}|glpat-[A-Za-z0-9_-]{20}|SG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}|SK[0-9a-f]{32})(?![A-Za-z0-9_-])/g,
    needs: (x) => x.longestToken >= 20,
    hint: (t) => /k_|AIza|sk-|npm_|pypi-|glpat-|SG\.|SK/.test(t),
  },
  {
    name: 'email',
    pattern: /(?<![A-Za-z0-9._%+-])[A-Za-z0-9](?:[A-Za-z0-9._%+-]{0,62}[A-Za-z0-9_%+-])?@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}(?![A-Za-z0-9-])/g,
    needs: (x) => x.at > 0 && x.dots > 0,
    // The local part is at most 64 characters: a match starts no further than that before its '@'.
    anchor: { text: '@', within: 64 },
    validate: (v) => !v.includes('..'),
  },
  {
    name: 'iban',
    pattern: /(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?(?![A-Za-z0-9])/g,
    needs: (x) => x.digits >= 2 && x.upper >= 2,
    validate: ibanValid,
  },
  {
    name: 'payment-card',
    pattern: /(?<![\d-])\d{4}(?:[ -]?\d{2,6}){2,4}(?![\d-])/g,
    // The validator wants 12–19 digits, and a match's digits are one run with single separators.
    needs: (x) => x.groupedDigits >= 12,
    validate: paymentCardValid,
  },
  {
    name: 'us-ssn',
    pattern: /(?<![\d-])\d{3}([- ])\d{2}\1\d{4}(?![\d-])/g,
    needs: (x) => x.groupedDigits >= 9,
    validate: ssnValid,
  },
  {
    name: 'phone',
    pattern: /(?<![\w+.-])(?:\+[1-9]\d{0,2}[ .-]?(?:\(\d{1,4}\)[ .-]?)?\d{1,4}(?:[ .-]?\d{2,4}){1,4}|(?:\(\d{3}\)[ .-]?|\d{3}[ .-])\d{3}[ .-]\d{4}|1[ .-]\d{3}[ .-]\d{3}[ .-]\d{4}|0\d{2,4}[ -]\d{3,4}[ -]?\d{3,4})(?![\w.-]*\d)(?![\w-])/g,
    // The validator wants at least 8 digits, all inside one run of phone characters.
    needs: (x) => x.phoneDigits >= 8,
    validate: phoneValid,
  },
  {
    name: 'ipv4',
    pattern: /(?<![\d.])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?![\d]|\.\d)/g,
    needs: (x) => x.dots >= 3 && x.digits >= 4,
    validate: ipv4Valid,
  },
  {
    name: 'ipv6',
    pattern: /(?<![0-9A-Za-z_:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:(?:\d{1,3}\.){3}\d{1,3}|[0-9A-Fa-f]{1,4})?(?![0-9A-Za-z_:]|\.\d)/g,
    needs: (x) => x.colons >= 2,
    validate: ipv6Valid,
  },
  {
    name: 'high-entropy-secret',
    pattern: /(?<![A-Za-z0-9+/=_-])[A-Za-z0-9+/_-]{20,512}={0,2}(?![A-Za-z0-9+/=_-])/g,
    needs: (x) => x.longestToken >= 20 && x.digits > 0 && x.upper > 0,
    validate: highEntropyValid,
  },
];

/**
 * A set of detectors chosen by a profile, ready to scan. Findings never overlap: detectors run in
 * order of precedence (a JWT is reported as a JWT, not also as a high-entropy string) and a later
 * finding that overlaps an earlier one is dropped.
 */
export class DetectorSet {
  private readonly detectors: readonly Detector[];

  constructor(names: Iterable<DetectorName>) {
    const wanted = new Set(names);
    this.detectors = DETECTORS.filter((d) => wanted.has(d.name));
  }

  get size(): number {
    return this.detectors.length;
  }

  get names(): readonly DetectorName[] {
    return this.detectors.map((d) => d.name);
  }

  /** Whether any detector could find something in a text with these traits: false, and the text is clean. */
  mayFind(traits: TextTraits): boolean {
    for (const detector of this.detectors) if (detector.needs(traits)) return true;
    return false;
  }

  /** Findings in `text` (ASCII-folded already), sorted by start; `traits` when already counted. */
  scan(text: string, traits: TextTraits = traitsOf(text)): Finding[] {
    // Claimed spans, sorted and disjoint: a candidate's overlap is a binary search, so a text
    // dense with values stays linear-logarithmic rather than quadratic.
    let claimed: Finding[] = [];
    for (const detector of this.detectors) {
      if (!detector.needs(traits) || (detector.hint !== undefined && !detector.hint(text))) continue;
      const added: Finding[] = [];
      const { pattern, anchor } = detector;
      let from = 0;
      for (;;) {
        if (anchor) {
          const at = text.indexOf(anchor.text, from);
          if (at < 0) break;
          // Lookbehinds still see the text before lastIndex: starting later changes no match.
          pattern.lastIndex = Math.max(from, at - anchor.within);
        } else pattern.lastIndex = from;
        const m = pattern.exec(text);
        if (m === null) break;
        from = pattern.lastIndex;
        let start = m.index;
        let end = start + m[0].length;
        if (detector.group !== undefined) {
          // The secret is the first capture group that took part (the password, not the URL).
          const indices = m.indices;
          const span = indices?.slice(1).find((s) => s !== undefined);
          if (!span) continue;
          [start, end] = span;
          // A quoted value: the quotes are syntax, the secret is inside.
          const first = text[start];
          if ((first === '"' || first === "'") && end - start >= 2) {
            start += 1;
            end -= 1;
          }
          if (end <= start) continue;
        }
        // A value an earlier detector already claimed is not validated again (entropy is not free).
        if (overlaps(claimed, start, end)) continue;
        if (detector.validate && !detector.validate(text.slice(start, end))) continue;
        added.push({ detector: detector.name, start, end });
      }
      if (added.length > 0) claimed = claimed.length === 0 ? added : merge(claimed, added);
    }
    return claimed;
  }

}

/** Whether [start, end) overlaps a span of `sorted` (sorted by start, disjoint, so ends are sorted too). */
function overlaps(sorted: readonly Finding[], start: number, end: number): boolean {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (sorted[mid]!.end <= start) lo = mid + 1;
    else hi = mid;
  }
  return lo < sorted.length && sorted[lo]!.start < end;
}

function merge(a: readonly Finding[], b: readonly Finding[]): Finding[] {
  const out: Finding[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) out.push(a[i]!.start <= b[j]!.start ? a[i++]! : b[j++]!);
  while (i < a.length) out.push(a[i++]!);
  while (j < b.length) out.push(b[j++]!);
  return out;
}
