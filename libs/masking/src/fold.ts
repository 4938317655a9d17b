/**
 * Folding text to ASCII before detection, so that Unicode look-alikes cannot smuggle a value past
 * the detectors: fullwidth digits (４１１１…), mathematical letters, the fullwidth at sign, Unicode
 * dashes and spaces, zero-width characters slipped between digits, and the Cyrillic and Greek
 * letters that look Latin. Findings in the folded text are mapped back to the original, so the
 * original characters are what gets masked.
 */
export interface FoldedText {
  readonly text: string;
  /** For folded index i: where the character that produced it starts and ends in the original. */
  readonly starts: Int32Array | undefined;
  readonly ends: Int32Array | undefined;
}

const NON_ASCII = /[^\x00-\x7f]/;
// Format characters (zero-width space and joiners, bidi marks, soft hyphen) and variation selectors render as nothing.
const INVISIBLE = /^[\p{Cf}\u{FE00}-\u{FE0F}\u{E0100}-\u{E01EF}]$/u;

/** Letters from other scripts that render like Latin ones; NFKC leaves them alone. */
const CONFUSABLES: Readonly<Record<string, string>> = {
  а: 'a', е: 'e', о: 'o', р: 'p', с: 'c', у: 'y', х: 'x', і: 'i', ј: 'j', ѕ: 's', ԁ: 'd', ԛ: 'q', ԝ: 'w', ɡ: 'g',
  А: 'A', В: 'B', Е: 'E', К: 'K', М: 'M', Н: 'H', О: 'O', Р: 'P', С: 'C', Т: 'T', Х: 'X', У: 'Y', І: 'I', Ј: 'J', Ѕ: 'S',
  ο: 'o', ν: 'v', α: 'a', ι: 'i', κ: 'k', ρ: 'p', τ: 't', υ: 'u', χ: 'x', Α: 'A', Β: 'B', Ε: 'E', Ζ: 'Z', Η: 'H',
  Ι: 'I', Κ: 'K', Μ: 'M', Ν: 'N', Ο: 'O', Ρ: 'P', Τ: 'T', Υ: 'Y', Χ: 'X',
  '\u2010': '-', '\u2011': '-', '\u2012': '-', '\u2013': '-', '\u2014': '-', '\u2015': '-', '\u2212': '-', '\uFE63': '-', '\uFF0D': '-',
};

export function hasNonAscii(text: string): boolean {
  return NON_ASCII.test(text);
}

export function foldToAscii(text: string): FoldedText {
  if (!NON_ASCII.test(text)) return { text, starts: undefined, ends: undefined };
  let out = '';
  const starts: number[] = [];
  const ends: number[] = [];
  let i = 0;
  for (const ch of text) {
    const end = i + ch.length;
    const folded = ch.charCodeAt(0) < 0x80 ? ch : foldChar(ch);
    for (let k = 0; k < folded.length; k++) {
      starts.push(i);
      ends.push(end);
    }
    out += folded;
    i = end;
  }
  return { text: out, starts: Int32Array.from(starts), ends: Int32Array.from(ends) };
}

/** Folded characters, remembered: normalising one character at a time is the slow part. Bounded. */
const FOLDED = new Map<string, string>();

function foldChar(ch: string): string {
  let folded = FOLDED.get(ch);
  if (folded !== undefined) return folded;
  if (INVISIBLE.test(ch)) folded = '';
  else {
    const confusable = CONFUSABLES[ch];
    if (confusable !== undefined) folded = confusable;
    else {
      const nfkc = ch.normalize('NFKC');
      // Only foldings to ASCII help detection; anything else stays as it was (one char, one slot).
      folded = NON_ASCII.test(nfkc) ? (CONFUSABLES[nfkc] ?? ch) : nfkc;
    }
  }
  if (FOLDED.size < 65536) FOLDED.set(ch, folded);
  return folded;
}

/** The original span of folded [start, end). */
export function originalSpan(folded: FoldedText, start: number, end: number): [number, number] {
  if (!folded.starts || !folded.ends) return [start, end];
  return [folded.starts[start]!, folded.ends[end - 1]!];
}
