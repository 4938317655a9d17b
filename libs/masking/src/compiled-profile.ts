import { StringDecoder } from 'node:string_decoder';
import { DETECTOR_NAMES, type DetectorName } from './detectors.js';
import { parseJsonPath } from './json-path.js';
import { analyzeStatementLineage, type LineageAnalysis, type OutputColumnLineage, type SourceColumn } from './lineage.js';
import { MaskingProfileError, validateProfileSpec, type MaskingHits, type MaskingProfileSpec } from './profile.js';
import { buildResultPlan, type ColumnTargeting, type MaskingRefusal, type ResultColumn, type ResultMaskPlan, type WholeColumnMask } from './result-plan.js';
import { redactedToken, StrategyApplier, type MaskingStrategy } from './strategies.js';
import { HitCounter, TextMasker, type DetectorAction, type JsonPathAction } from './text-masker.js';

export interface CompileOptions {
  /** The HMAC-SHA-256 key of the hash and format-preserving strategies (TRACEGATE_MASKING_HASH_KEY, ≥ 32 bytes). */
  readonly hashKey: Buffer;
}

/** Masks a stream (COPY OUT data, SSH output) chunk by chunk. */
export interface StreamRedactor {
  /** Masks what can be masked now; holds back a bounded tail that a secret could still be continuing into. */
  push(chunk: Buffer | string): Buffer;
  /** Masks and releases the held tail (call after a quiet moment, so an interactive prompt is not held back). */
  flush(): Buffer;
  /** The end of the stream: masks and releases everything held. */
  end(): Buffer;
  hits(): MaskingHits;
}

interface ColumnRule {
  readonly name: string;
  readonly strategy: MaskingStrategy;
  readonly keepLast: number;
  /** Lower-case column name (exact rules) … */
  readonly column?: string;
  /** … and its table when the rule names one (`users.email`). */
  readonly table?: string;
  readonly pattern?: RegExp;
}

/** How many statements' lineage a profile remembers: a client repeating a statement pays the parse once. */
const LINEAGE_CACHE_SIZE = 512;
/** The stream redactor holds back this many characters: longer than any value a detector finds on one line. */
const STREAM_TAIL = 1024;
/** … and never more than this, whatever arrives (memory stays bounded). */
const STREAM_MAX_HELD = 64 * 1024;
const PRIVATE_KEY_END = /-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----/;

/**
 * A masking profile compiled for the hot path: rules are resolved, regular expressions built and
 * detectors chosen once; per result the plan decides once per column what to do, so a row costs
 * only the work its targeted columns need.
 */
export class CompiledMaskingProfile {
  readonly name: string;
  readonly version: string;
  private readonly applier: StrategyApplier;
  private readonly columnRules: readonly ColumnRule[];
  private readonly text: TextMasker;
  private readonly lineageCache = new Map<string, LineageAnalysis>();

  constructor(readonly spec: MaskingProfileSpec, options: CompileOptions) {
    const problems = validateProfileSpec(spec);
    if (problems.length > 0) throw new MaskingProfileError(spec.name, problems);
    this.name = spec.name;
    this.version = spec.version;
    this.applier = new StrategyApplier(options.hashKey);
    const columnRules: ColumnRule[] = [];
    const detectors = new Map<DetectorName, DetectorAction>();
    const jsonPaths: JsonPathAction[] = [];
    for (const rule of spec.rules) {
      const keepLast = rule.keepLast ?? 0;
      if (rule.column) {
        // `email`, `users.email` or `public.users.email`: the column, and the table without its schema.
        const parts = rule.column.toLowerCase().split('.');
        const column = parts.pop()!;
        const table = parts.pop();
        columnRules.push({ name: rule.name, strategy: rule.strategy, keepLast, column, ...(table !== undefined ? { table } : {}) });
      } else if (rule.columnPattern) {
        columnRules.push({ name: rule.name, strategy: rule.strategy, keepLast, pattern: new RegExp(rule.columnPattern, 'i') });
      } else if (rule.jsonPath) {
        jsonPaths.push({ rule: rule.name, path: parseJsonPath(rule.jsonPath), strategy: rule.strategy, keepLast });
      } else if (rule.detector) {
        // The first rule naming a detector decides its strategy; '*' covers those not named before it.
        const names = rule.detector === '*' ? DETECTOR_NAMES : [rule.detector as DetectorName];
        for (const name of names) if (!detectors.has(name)) detectors.set(name, { rule: rule.name, strategy: rule.strategy, keepLast });
      }
    }
    this.columnRules = columnRules;
    this.text = new TextMasker(this.applier, detectors, jsonPaths);
  }

  /**
   * The plan for one result. `lineage` is the statement text (analysed here, cached), or an
   * analysis made before (namedQueryLineage's, for FETCH and EXECUTE), or bare output lineage;
   * without it, column rules match RowDescription names only.
   */
  planResult(columns: readonly ResultColumn[], lineage?: readonly OutputColumnLineage[] | LineageAnalysis | string): ResultMaskPlan | MaskingRefusal {
    let analysed: readonly OutputColumnLineage[] | undefined;
    if (typeof lineage === 'string' || (lineage !== undefined && !Array.isArray(lineage))) {
      const analysis = typeof lineage === 'string' ? this.lineageOf(lineage) : (lineage as LineageAnalysis);
      if (analysis.kind === 'opaque') {
        const masked = analysis.reads.find((source) => this.columnRules.some((rule) => ruleMatches(rule, source.column.toLowerCase(), undefined)));
        if (masked) {
          return {
            refused: `the statement mentions the masked column "${masked.column}" in a form whose result columns cannot be traced (several statements, TABLESAMPLE, table functions…); select masked columns in a plain SELECT so they can be masked`,
          };
        }
      }
      analysed = analysis.kind === 'columns' ? analysis.columns : undefined;
    } else {
      analysed = lineage;
    }
    let perColumn: readonly (OutputColumnLineage | undefined)[] | undefined;
    if (analysed) {
      perColumn = alignLineage(analysed, columns);
      if (!perColumn) {
        const masked = analysed.flatMap((entry) => entry.sources).find((source) => this.columnRules.some((rule) => ruleMatches(rule, source.column, source.table)));
        if (masked) {
          return {
            refused: `the result's columns cannot be matched to the statement's select list, which reads the masked column "${masked.table ? `${masked.table}.` : ''}${masked.column}"; list the columns explicitly instead of several '*'`,
          };
        }
      }
    }
    const targets: ColumnTargeting[] = columns.map((column, i) => ({ column, whole: this.wholeColumnMask(column, perColumn?.[i]) }));
    return buildResultPlan(targets, this.text, this.applier, new HitCounter());
  }

  /** Masks a notice, an error, a trace or an event payload: JSON paths (for JSON text) and detectors. */
  redactText(text: string): { text: string; hits: MaskingHits } {
    const hits = new HitCounter();
    const masked = this.text.mask(text, hits);
    return { text: masked, hits: hits.snapshot() };
  }

  createStreamRedactor(): StreamRedactor {
    return new StreamRedaction(this.text);
  }

  private lineageOf(sql: string): LineageAnalysis {
    const cached = this.lineageCache.get(sql);
    if (cached) return cached;
    const lineage = analyzeStatementLineage(sql);
    if (this.lineageCache.size >= LINEAGE_CACHE_SIZE) this.lineageCache.delete(this.lineageCache.keys().next().value!);
    this.lineageCache.set(sql, lineage);
    return lineage;
  }

  private wholeColumnMask(column: ResultColumn, lineage: OutputColumnLineage | undefined): WholeColumnMask | undefined {
    for (const rule of this.columnRules) {
      // A rule naming a table trusts the lineage when there is one; without it, the name alone decides (over-masking is safe).
      const byName = (rule.table === undefined || lineage === undefined) && ruleMatches(rule, column.name.toLowerCase(), undefined);
      const bySource = lineage?.sources.some((s) => ruleMatches(rule, s.column.toLowerCase(), s.table?.toLowerCase())) ?? false;
      if (!byName && !bySource) continue;
      // A computed value (reverse(card), email || 'x') is masked whole: keeping its last characters
      // or its shape could reveal the source, so partial and format-preserving become redact.
      const derived = bySource && (lineage?.derived ?? false);
      const strategy = derived && (rule.strategy === 'partial' || rule.strategy === 'format-preserving') ? 'redact' : rule.strategy;
      return { rule: rule.name, strategy, keepLast: rule.keepLast };
    }
    return undefined;
  }
}

export function compileProfile(profile: MaskingProfileSpec, options: CompileOptions): CompiledMaskingProfile {
  return new CompiledMaskingProfile(profile, options);
}

function ruleMatches(rule: ColumnRule, column: string, table: string | undefined): boolean {
  // A whole-row reference carries every column of its table.
  if (column === '*') return rule.table === undefined || table === undefined || rule.table === table.toLowerCase();
  if (rule.pattern) return rule.pattern.test(column);
  if (rule.column !== column.toLowerCase()) return false;
  return rule.table === undefined || table === undefined || rule.table === table.toLowerCase();
}

/**
 * Lines up the lineage with the RowDescription. Each `*` over a table stands for as many columns
 * as the table has: with one such star it takes what the other entries leave; with several, each
 * takes the run of columns from one table (RowDescription gives each its table's OID).
 */
export function alignLineage(lineage: readonly OutputColumnLineage[], columns: readonly ResultColumn[]): (OutputColumnLineage | undefined)[] | undefined {
  const stars = lineage.filter((entry) => entry.star).length;
  if (stars === 0) return lineage.length === columns.length ? [...lineage] : undefined;
  const fixed = lineage.length - stars;
  if (fixed > columns.length) return undefined;
  const out: OutputColumnLineage[] = [];
  let c = 0;
  let fixedLeft = fixed;
  for (const entry of lineage) {
    if (!entry.star) {
      if (c >= columns.length) return undefined;
      c++;
      fixedLeft--;
      out.push(entry);
      continue;
    }
    let take: number;
    if (stars === 1) take = columns.length - c - fixedLeft;
    else {
      const oid = columns[c]?.tableOid ?? 0;
      if (oid === 0) return undefined;
      take = 0;
      while (c + take < columns.length - fixedLeft && columns[c + take]!.tableOid === oid) take++;
    }
    if (take < 0) return undefined;
    for (let k = 0; k < take; k++) {
      const column = columns[c + k]!;
      // With several stars the runs say where one table's columns end, not which table it was
      // (a join's merged USING columns come first): each column is then counted as any table's.
      const table = stars === 1 ? entry.star.table : undefined;
      const sources: SourceColumn[] = [{ ...(table ? { table } : {}), column: column.name }, ...entry.sources];
      out.push({ name: column.name, sources, derived: entry.derived });
    }
    c += take;
  }
  return c === columns.length ? out : undefined;
}

class StreamRedaction implements StreamRedactor {
  private readonly decoder = new StringDecoder('utf8');
  private readonly counter = new HitCounter();
  private held = '';
  /** Inside a private key whose start was already masked: everything up to its END line is dropped. */
  private inPrivateKey = false;

  constructor(private readonly text: TextMasker) {}

  push(chunk: Buffer | string): Buffer {
    return this.release(this.held + (typeof chunk === 'string' ? chunk : this.decoder.write(chunk)), false);
  }

  flush(): Buffer {
    return this.release(this.held, true);
  }

  end(): Buffer {
    return this.release(this.held + this.decoder.end(), true);
  }

  hits(): MaskingHits {
    return this.counter.snapshot();
  }

  private release(input: string, all: boolean): Buffer {
    let text = input;
    this.held = '';
    if (this.inPrivateKey) {
      const endMarker = PRIVATE_KEY_END.exec(text);
      if (!endMarker) {
        // The END line may be arriving split: keep its possible start, drop the key's body.
        if (!all) this.held = text.slice(-64);
        return Buffer.alloc(0);
      }
      this.inPrivateKey = false;
      text = text.slice(endMarker.index + endMarker[0].length);
    }
    if (all) return Buffer.from(this.text.maskDetected(text, this.counter), 'utf8');
    let cut = text.length - STREAM_TAIL;
    if (cut <= 0) {
      this.held = text;
      return Buffer.alloc(0);
    }
    const scan = this.text.scan(text);
    if (!scan) {
      this.held = text.slice(cut);
      return Buffer.from(text.slice(0, cut), 'utf8');
    }
    // A value that straddles the cut is held whole, so the next chunk can complete it.
    let openKey: number | undefined;
    for (const finding of scan.findings) {
      const start = scan.folded.starts ? scan.folded.starts[finding.start]! : finding.start;
      const end = scan.folded.ends ? scan.folded.ends[finding.end - 1]! : finding.end;
      if (start < cut && end > cut) {
        if (text.length - start <= STREAM_MAX_HELD) cut = start;
        else if (finding.detector === 'private-key' && !PRIVATE_KEY_END.test(text.slice(start))) openKey = start;
        // Longer than the bound lets us hold: masked now, as far as it has come.
        else cut = end;
      }
    }
    if (openKey !== undefined) {
      // A key longer than the bound: mask from its BEGIN line and drop the rest until its END line.
      const before = this.text.applyFindings(text, scan, 0, openKey, this.counter);
      this.counter.add('detector:private-key');
      this.inPrivateKey = true;
      return Buffer.from(before + redactedToken('private-key'), 'utf8');
    }
    this.held = text.slice(cut);
    return Buffer.from(this.text.applyFindings(text, scan, 0, cut, this.counter), 'utf8');
  }
}
