import { DETECTOR_NAMES, DetectorSet, type DetectorName, type Finding, type TextTraits } from './detectors.js';
import { foldToAscii, originalSpan, type FoldedText } from './fold.js';
import { maskJsonPath, type Json, type JsonPath } from './json-path.js';
import type { MaskingHits } from './profile.js';
import type { MaskingStrategy, StrategyApplier } from './strategies.js';

/** Counts hits by name while a result, a text or a stream is masked. Names only, never values. */
export class HitCounter {
  private readonly counts = new Map<string, number>();

  add(key: string, n = 1): void {
    this.counts.set(key, (this.counts.get(key) ?? 0) + n);
  }

  snapshot(): MaskingHits {
    return Object.fromEntries(this.counts);
  }
}

export interface DetectorAction {
  readonly rule: string;
  readonly strategy: MaskingStrategy;
  readonly keepLast: number;
}

export interface JsonPathAction {
  readonly rule: string;
  readonly path: JsonPath;
  readonly strategy: MaskingStrategy;
  readonly keepLast: number;
}

/**
 * A JSON string that stands for a masked value while detectors run: a letter id between two
 * U+0001 characters, which JSON.stringify writes as the ASCII escape \u0001 (so the serialized
 * document stays ASCII, the detectors' fast path) and no detector matches.
 */
const PLACEHOLDER = /"\\u0001([a-z]+)\\u0001"/g;

function placeholder(index: number): string {
  let id = '';
  let n = index;
  do {
    id = String.fromCharCode(97 + (n % 26)) + id;
    n = Math.floor(n / 26);
  } while (n > 0);
  return `\u0001${id}\u0001`;
}

function placeholderIndex(id: string): number {
  let n = 0;
  for (const ch of id) n = n * 26 + (ch.charCodeAt(0) - 97);
  return n;
}

function parseJsonDocument(text: string, json: 'always' | 'if-json'): Json | undefined {
  if (json === 'if-json') {
    const first = text.trimStart()[0];
    if (first !== '{' && first !== '[') return undefined;
  }
  try {
    return JSON.parse(text) as Json;
  } catch {
    return undefined;
  }
}

/** Hit names made once: a template string per finding would be a new string to hash each time. */
const DETECTOR_HIT_KEYS = Object.fromEntries(DETECTOR_NAMES.map((name) => [name, `detector:${name}`])) as Record<DetectorName, string>;

/** Findings in a text, with the folding needed to map them back to it. */
export interface Scan {
  readonly folded: FoldedText;
  readonly findings: readonly Finding[];
}

/**
 * Masks free text: JSON paths inside JSON documents, then detectors. Returns the very same string
 * when nothing fired, so callers can tell "unchanged" by identity without comparing.
 */
export class TextMasker {
  readonly detectors: DetectorSet;

  constructor(
    private readonly applier: StrategyApplier,
    private readonly detectorActions: ReadonlyMap<DetectorName, DetectorAction>,
    private readonly jsonActions: readonly JsonPathAction[],
  ) {
    this.detectors = new DetectorSet(detectorActions.keys());
  }

  get hasDetectors(): boolean {
    return this.detectors.size > 0;
  }

  get hasJsonPaths(): boolean {
    return this.jsonActions.length > 0;
  }

  mask(text: string, hits: HitCounter, json: 'always' | 'if-json' = 'if-json'): string {
    if (this.jsonActions.length === 0) return this.maskDetected(text, hits);
    const document = parseJsonDocument(text, json);
    if (document === undefined) return this.maskDetected(text, hits);
    // Values masked by a JSON path are held out of the detectors' sight behind placeholders (an
    // email made format-preserving must not be redacted again, a hash token is no card number),
    // and put in after.
    const masked: (string | null)[] = [];
    for (const action of this.jsonActions) {
      const n = maskJsonPath(document, action.path, (value) => {
        masked.push(this.applier.apply(value, action.strategy, action.keepLast));
        return placeholder(masked.length - 1);
      });
      if (n > 0) hits.add(`json:${action.rule}`, n);
    }
    if (masked.length === 0) return this.maskDetected(text, hits);
    return this.maskDetected(JSON.stringify(document), hits).replace(PLACEHOLDER, (_, id: string) => JSON.stringify(masked[placeholderIndex(id)]) ?? 'null');
  }

  scan(text: string): Scan | undefined {
    if (this.detectors.size === 0 || text.length < 3) return undefined;
    const folded = foldToAscii(text);
    const findings = this.detectors.scan(folded.text);
    return findings.length > 0 ? { folded, findings } : undefined;
  }

  /**
   * maskDetected for a text with nothing to fold (ASCII, or bytes read as latin1), whose traits
   * are counted already.
   */
  maskUnfolded(text: string, traits: TextTraits, hits: HitCounter): string {
    if (this.detectors.size === 0 || text.length < 3) return text;
    const findings = this.detectors.scan(text, traits);
    return findings.length > 0 ? this.applyFindings(text, { folded: { text, starts: undefined, ends: undefined }, findings }, 0, text.length, hits) : text;
  }

  maskDetected(text: string, hits: HitCounter): string {
    const scan = this.scan(text);
    return scan ? this.applyFindings(text, scan, 0, text.length, hits) : text;
  }

  /** What replaces a finding of the scanned (folded) text, counted in `hits`. */
  replacement(scanned: string, finding: Finding, hits: HitCounter): string {
    const action = this.detectorActions.get(finding.detector)!;
    // Part of a text cannot be NULL: the null strategy redacts there.
    const strategy = action.strategy === 'null' ? 'redact' : action.strategy;
    hits.add(DETECTOR_HIT_KEYS[finding.detector]);
    return this.applier.apply(scanned.slice(finding.start, finding.end), strategy, action.keepLast, finding.detector)!;
  }

  /** The original text from `from` to `to` with every finding inside that range replaced. */
  applyFindings(text: string, scan: Scan, from: number, to: number, hits: HitCounter): string {
    let out = '';
    let at = from;
    for (const finding of scan.findings) {
      const [start, end] = originalSpan(scan.folded, finding.start, finding.end);
      if (start < from || end > to) continue;
      // The folded value: a fullwidth card number is hashed and kept-last like its ASCII twin.
      out += text.slice(at, start) + this.replacement(scan.folded.text, finding, hits);
      at = end;
    }
    return out + text.slice(at, to);
  }
}
