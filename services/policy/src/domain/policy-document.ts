import { createHash } from 'node:crypto';
import { LineCounter, isMap, isPair, isScalar, isSeq, parseDocument, type Node as YamlNode } from 'yaml';
import { canonicalJson } from '@tracegate/events';
import { CelCompileError, compileCelCondition, type CelCondition } from './cel-condition.js';
import { PolicyError, PolicyErrorCode } from './policy-error.js';
import { STATEMENT_FLAGS, STATEMENT_KINDS, type StatementFlag, type StatementKind } from './sql-analysis.js';

export const IDENTITY_KINDS = ['agent', 'human', 'service'] as const;
export type IdentityKindName = (typeof IDENTITY_KINDS)[number];
export const EFFECTS = ['allow', 'deny', 'review'] as const;
export type Effect = (typeof EFFECTS)[number];
export const DEFAULT_EFFECTS = ['allow', 'deny'] as const;
export type DefaultEffect = (typeof DEFAULT_EFFECTS)[number];

/** Every condition given must hold; a list condition holds when any of its values matches. */
export interface RuleMatch {
  readonly identity?: { readonly kind?: readonly IdentityKindName[]; readonly groups?: readonly string[] };
  /** `name` values may use `*` and `?` globs. */
  readonly target?: { readonly name?: readonly string[]; readonly labels?: Readonly<Record<string, string>> };
  readonly statement?: {
    readonly kind?: readonly StatementKind[];
    /** Table globs; `users` matches a `users` table in any schema, `public.users` that one only. */
    readonly writes?: readonly string[];
    readonly reads?: readonly string[];
    /** Function globs; `lo_*` matches `lo_unlink` and `pg_catalog.lo_unlink`. */
    readonly functions?: readonly string[];
    /** Program globs for shell commands: `rm`, `mkfs*`. */
    readonly programs?: readonly string[];
    readonly hasWhere?: boolean;
    readonly flags?: readonly StatementFlag[];
    readonly opaque?: boolean;
  };
}

export interface ReviewRequirement {
  readonly group: string;
  readonly quorum: number;
  readonly timeoutSeconds: number;
}

export interface PolicyRule {
  readonly name: string;
  readonly priority: number;
  readonly match: RuleMatch;
  /** A CEL condition over the policy input, compiled at load; it must hold too. */
  readonly when?: CelCondition;
  readonly effect: Effect;
  /** What the caller is told: always set for deny and review. */
  readonly reason: string;
  readonly maskingProfile: string;
  readonly review?: ReviewRequirement;
}

export interface PolicyDocument {
  readonly version: 1;
  /** The effect for each identity kind when no rule matches. */
  readonly defaults: Readonly<Record<IdentityKindName, DefaultEffect>>;
  /** In evaluation order: highest priority first, document order among equals. */
  readonly rules: readonly PolicyRule[];
}

/** A validated document and where it came from. */
export interface ActivePolicy {
  readonly document: PolicyDocument;
  /** `sha256:<hex>` over the document's canonical JSON: comments and layout do not change it. */
  readonly version: string;
  /** The file path, the directory, "built-in", or "published by <author>". */
  readonly source: string;
  /** The document as written (a directory's files one after the other): kept with each version. */
  readonly text: string;
}

export const REVIEW_DEFAULTS = { quorum: 1, timeoutSeconds: 3600 } as const;

type Path = readonly (string | number)[];

interface DocumentProblem {
  readonly path: Path;
  readonly message: string;
  /** For a CEL problem: its offset in the expression, so the position points into it. */
  readonly expressionOffset?: number;
}

function formatPath(path: Path, ruleNames: ReadonlyMap<number, string>): string {
  let out = '';
  for (const [i, segment] of path.entries()) {
    if (typeof segment === 'number') {
      out += `[${segment}]`;
      const name = i === 1 && path[0] === 'rules' ? ruleNames.get(segment) : undefined;
      if (name) out += ` (${name})`;
    } else out += out === '' ? segment : `.${segment}`;
  }
  return out || '(document)';
}

function quoted(value: unknown): string {
  if (typeof value === 'string') return `'${value}'`;
  return JSON.stringify(value) ?? String(value);
}

function describe(value: unknown): string {
  if (value === null || value === undefined) return 'empty';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  return `${typeof value} ${quoted(value)}`;
}

/** Reads the plain value the YAML produced and names every problem with its path. */
class DocumentReader {
  readonly problems: DocumentProblem[] = [];

  problem(path: Path, message: string, expressionOffset?: number): void {
    this.problems.push({ path, message, ...(expressionOffset !== undefined && { expressionOffset }) });
  }

  mapping(value: unknown, path: Path, known: readonly string[], required: readonly string[] = []): Record<string, unknown> | undefined {
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      this.problem(path, `must be a mapping with ${known.join(', ')}, not ${describe(value)}`);
      return undefined;
    }
    const record = value as Record<string, unknown>;
    for (const key of Object.keys(record)) {
      if (!known.includes(key)) this.problem([...path, key], `is not a known field; expected one of ${known.join(', ')}`);
    }
    for (const key of required) {
      if (record[key] === undefined || record[key] === null) this.problem([...path, key], 'is required');
    }
    return record;
  }

  string(value: unknown, path: Path, optional = false): string | undefined {
    if (value === undefined || value === null) {
      if (!optional) this.problem(path, 'is required');
      return undefined;
    }
    if (typeof value !== 'string' || value.trim() === '') {
      this.problem(path, `must be a non-empty string, not ${describe(value)}`);
      return undefined;
    }
    return value;
  }

  integer(value: unknown, path: Path, min: number, max: number): number | undefined {
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
      this.problem(path, `must be a whole number from ${min} to ${max}, not ${describe(value)}`);
      return undefined;
    }
    return value;
  }

  boolean(value: unknown, path: Path): boolean | undefined {
    if (typeof value !== 'boolean') {
      this.problem(path, `must be true or false, not ${describe(value)}`);
      return undefined;
    }
    return value;
  }

  oneOf<T extends string>(value: unknown, path: Path, allowed: readonly T[]): T | undefined {
    if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
      this.problem(path, `${typeof value === 'string' ? quoted(value) : describe(value)} is not one of ${allowed.join(', ')}`);
      return undefined;
    }
    return value as T;
  }

  /** A list of strings (a single string is taken as a list of one), each optionally from `allowed`. */
  list<T extends string = string>(value: unknown, path: Path, allowed?: readonly T[]): T[] | undefined {
    const items = typeof value === 'string' ? [value] : value;
    if (!Array.isArray(items) || items.length === 0) {
      this.problem(path, `must be a non-empty list${allowed ? ` of ${allowed.join(', ')}` : ' of strings'}, not ${describe(value)}`);
      return undefined;
    }
    const out: T[] = [];
    let ok = true;
    for (const [i, item] of items.entries()) {
      const itemPath = typeof value === 'string' ? path : [...path, i];
      if (allowed) {
        if (typeof item !== 'string' || !(allowed as readonly string[]).includes(item)) {
          this.problem(itemPath, `${typeof item === 'string' ? quoted(item) : describe(item)} is not one of ${allowed.join(', ')}`);
          ok = false;
        } else out.push(item as T);
      } else if (typeof item !== 'string' || item.trim() === '') {
        this.problem(itemPath, `must be a non-empty string, not ${describe(item)}`);
        ok = false;
      } else out.push(item as T);
    }
    return ok ? out : undefined;
  }
}

const TOP_FIELDS = ['version', 'default', 'rules'] as const;
const RULE_FIELDS = ['name', 'priority', 'match', 'when', 'effect', 'reason', 'masking_profile', 'review'] as const;
const MATCH_FIELDS = ['identity', 'target', 'statement'] as const;
const IDENTITY_FIELDS = ['kind', 'groups'] as const;
const TARGET_FIELDS = ['name', 'labels'] as const;
const STATEMENT_FIELDS = ['kind', 'writes', 'reads', 'functions', 'programs', 'has_where', 'flags', 'opaque'] as const;
const REVIEW_FIELDS = ['group', 'quorum', 'timeout_seconds'] as const;

function readMatch(reader: DocumentReader, raw: unknown, path: Path): RuleMatch | undefined {
  if (raw === undefined || raw === null) return {};
  const match = reader.mapping(raw, path, MATCH_FIELDS);
  if (!match) return undefined;
  const out: { -readonly [K in keyof RuleMatch]: RuleMatch[K] } = {};
  if (match.identity !== undefined) {
    const p = [...path, 'identity'];
    const identity = reader.mapping(match.identity, p, IDENTITY_FIELDS);
    if (identity) {
      out.identity = {
        ...(identity.kind !== undefined && { kind: reader.list(identity.kind, [...p, 'kind'], IDENTITY_KINDS) ?? [] }),
        ...(identity.groups !== undefined && { groups: reader.list(identity.groups, [...p, 'groups']) ?? [] }),
      };
    }
  }
  if (match.target !== undefined) {
    const p = [...path, 'target'];
    const target = reader.mapping(match.target, p, TARGET_FIELDS);
    if (target) {
      let labels: Record<string, string> | undefined;
      if (target.labels !== undefined) {
        const rawLabels = target.labels;
        if (rawLabels === null || typeof rawLabels !== 'object' || Array.isArray(rawLabels) || Object.keys(rawLabels).length === 0) {
          reader.problem([...p, 'labels'], `must be a non-empty mapping of label to value, not ${describe(rawLabels)}`);
        } else {
          labels = {};
          for (const [key, value] of Object.entries(rawLabels)) {
            const v = typeof value === 'number' || typeof value === 'boolean' ? String(value) : value;
            if (typeof v !== 'string') reader.problem([...p, 'labels', key], `must be a string, not ${describe(value)}`);
            else labels[key] = v;
          }
        }
      }
      out.target = {
        ...(target.name !== undefined && { name: reader.list(target.name, [...p, 'name']) ?? [] }),
        ...(labels && { labels }),
      };
    }
  }
  if (match.statement !== undefined) {
    const p = [...path, 'statement'];
    const statement = reader.mapping(match.statement, p, STATEMENT_FIELDS);
    if (statement) {
      out.statement = {
        ...(statement.kind !== undefined && { kind: reader.list(statement.kind, [...p, 'kind'], STATEMENT_KINDS) ?? [] }),
        ...(statement.writes !== undefined && { writes: reader.list(statement.writes, [...p, 'writes']) ?? [] }),
        ...(statement.reads !== undefined && { reads: reader.list(statement.reads, [...p, 'reads']) ?? [] }),
        ...(statement.functions !== undefined && { functions: reader.list(statement.functions, [...p, 'functions']) ?? [] }),
        ...(statement.programs !== undefined && { programs: reader.list(statement.programs, [...p, 'programs']) ?? [] }),
        ...(statement.has_where !== undefined && { hasWhere: reader.boolean(statement.has_where, [...p, 'has_where']) ?? false }),
        ...(statement.flags !== undefined && { flags: reader.list(statement.flags, [...p, 'flags'], STATEMENT_FLAGS) ?? [] }),
        ...(statement.opaque !== undefined && { opaque: reader.boolean(statement.opaque, [...p, 'opaque']) ?? false }),
      };
    }
  }
  return out;
}

function readRule(reader: DocumentReader, raw: unknown, index: number): PolicyRule | undefined {
  const path: Path = ['rules', index];
  const rule = reader.mapping(raw, path, RULE_FIELDS, ['name', 'priority', 'effect']);
  if (!rule) return undefined;
  const before = reader.problems.length;
  const name = rule.name === undefined ? undefined : reader.string(rule.name, [...path, 'name']);
  const priority = rule.priority === undefined ? undefined : reader.integer(rule.priority, [...path, 'priority'], -1_000_000, 1_000_000);
  const effect = rule.effect === undefined ? undefined : reader.oneOf(rule.effect, [...path, 'effect'], EFFECTS);
  const match = readMatch(reader, rule.match, [...path, 'match']);
  let when: CelCondition | undefined;
  if (rule.when !== undefined) {
    const expression = reader.string(rule.when, [...path, 'when']);
    if (expression !== undefined) {
      try {
        when = compileCelCondition(expression);
      } catch (error) {
        if (!(error instanceof CelCompileError)) throw error;
        reader.problem([...path, 'when'], error.problem.message, error.problem.offset);
      }
    }
  }
  const reason = reader.string(rule.reason, [...path, 'reason'], effect !== 'deny');
  const maskingProfile = reader.string(rule.masking_profile, [...path, 'masking_profile'], true);
  let review: ReviewRequirement | undefined;
  if (effect === 'review') {
    const p = [...path, 'review'];
    const raw = reader.mapping(rule.review, p, REVIEW_FIELDS, ['group']);
    if (raw) {
      const group = raw.group === undefined ? undefined : reader.string(raw.group, [...p, 'group']);
      const quorum = raw.quorum === undefined ? REVIEW_DEFAULTS.quorum : reader.integer(raw.quorum, [...p, 'quorum'], 1, 100);
      const timeoutSeconds =
        raw.timeout_seconds === undefined ? REVIEW_DEFAULTS.timeoutSeconds : reader.integer(raw.timeout_seconds, [...p, 'timeout_seconds'], 1, 7 * 24 * 3600);
      if (group && quorum && timeoutSeconds) review = { group, quorum, timeoutSeconds };
    }
  } else if (rule.review !== undefined) {
    reader.problem([...path, 'review'], `is only for effect review; this rule's effect is ${effect ?? 'not valid'}`);
  }
  if (reader.problems.length > before || !name || priority === undefined || !effect || !match) return undefined;
  const defaultReason =
    effect === 'review' ? `rule '${name}' requires approval from ${review?.group ?? 'a reviewer'}` : `allowed by rule '${name}'`;
  return {
    name,
    priority,
    match,
    ...(when && { when }),
    effect,
    reason: reason ?? defaultReason,
    maskingProfile: maskingProfile ?? '',
    ...(review && { review }),
  };
}

/**
 * Where an offset into a string value lies in the source: the value's text begins after an
 * opening quote, or on the line after a block scalar's header (`|`), indented.
 */
function positionInScalar(source: string, root: unknown, path: Path, offset: number): number | undefined {
  let node: unknown = root;
  for (const segment of path) {
    if (isMap(node)) node = node.items.find((item) => isPair(item) && isScalar(item.key) && item.key.value === segment)?.value;
    else if (isSeq(node) && typeof segment === 'number') node = node.items[segment];
    else return undefined;
  }
  if (!isScalar(node) || !node.range || typeof node.value !== 'string') return undefined;
  const start = node.range[0];
  switch (node.type) {
    case 'PLAIN':
      return node.value.includes('\n') ? undefined : start + offset;
    case 'QUOTE_SINGLE':
    case 'QUOTE_DOUBLE':
      // Escapes make the source longer than the value; positions are exact without them.
      return node.value.includes('\n') ? undefined : start + 1 + offset;
    case 'BLOCK_LITERAL': {
      const before = node.value.slice(0, offset);
      const lineIndex = before.split('\n').length - 1;
      const column = offset - (before.lastIndexOf('\n') + 1);
      let lineStart = source.indexOf('\n', start) + 1;
      if (lineStart === 0) return undefined;
      const indent = /^ */.exec(source.slice(lineStart))![0].length;
      for (let i = 0; i < lineIndex; i++) lineStart = source.indexOf('\n', lineStart) + 1;
      return lineStart + indent + column;
    }
    default:
      return undefined;
  }
}

/** Where a path points in the YAML source: the value, or the key when that is what is wrong. */
function positionOf(root: unknown, path: Path): number | undefined {
  let node: unknown = root;
  let position: number | undefined = (root as YamlNode | undefined)?.range?.[0];
  for (const segment of path) {
    if (isMap(node)) {
      const pair = node.items.find((item) => isPair(item) && isScalar(item.key) && item.key.value === segment);
      if (!pair) return position;
      position = (isScalar(pair.key) ? pair.key.range?.[0] : undefined) ?? position;
      node = pair.value;
      if ((node as YamlNode | null)?.range) position = (node as YamlNode).range![0];
    } else if (isSeq(node) && typeof segment === 'number') {
      node = node.items[segment];
      if ((node as YamlNode | undefined)?.range) position = (node as YamlNode).range![0];
    } else return position;
  }
  return position;
}

/** One source document of a policy: a file, or a document published through the API. */
export interface PolicySourceDocument {
  /** How problems name it: a file path, or "published document". */
  readonly source: string;
  readonly text: string;
}

interface DocumentPart {
  readonly defaults?: Partial<Record<IdentityKindName, DefaultEffect>>;
  /** Where `default` is, as file:line:col. */
  readonly defaultsAt?: string;
  readonly rules: readonly { readonly rule: PolicyRule; readonly at: string }[];
  readonly problems: readonly string[];
}

/** Reads one document; every problem comes back located (file:line:col, path, rule name). */
function readDocumentPart(text: string, source: string, requireDefault: boolean): DocumentPart {
  const lineCounter = new LineCounter();
  const yaml = parseDocument(text, { lineCounter, uniqueKeys: true });
  const where = (offset: number | undefined) => {
    if (offset === undefined) return source;
    const { line, col } = lineCounter.linePos(offset);
    return `${source}:${line}:${col}`;
  };
  if (yaml.errors.length > 0) {
    return { rules: [], problems: yaml.errors.map((error) => `${where(error.pos[0])}: ${error.message.split('\n')[0]}`) };
  }

  const reader = new DocumentReader();
  const raw = yaml.toJS({ maxAliasCount: 100 }) as unknown;
  const top = reader.mapping(raw, [], TOP_FIELDS, requireDefault ? ['version', 'default', 'rules'] : ['version']);
  const ruleNames = new Map<number, string>();
  let defaults: Partial<Record<IdentityKindName, DefaultEffect>> | undefined;
  const rules: { rule: PolicyRule; at: string }[] = [];
  if (top) {
    if (top.version !== undefined && top.version !== 1) reader.problem(['version'], `${describe(top.version)} is not supported; use version: 1`);
    if (top.default !== undefined) {
      defaults = {};
      const raw = reader.mapping(top.default, ['default'], IDENTITY_KINDS, IDENTITY_KINDS);
      for (const kind of IDENTITY_KINDS) {
        if (raw?.[kind] === undefined || raw[kind] === null) continue;
        const effect = reader.oneOf(raw[kind], ['default', kind], DEFAULT_EFFECTS);
        if (effect) defaults[kind] = effect;
      }
    }
    if (top.rules !== undefined && top.rules !== null && !Array.isArray(top.rules)) {
      reader.problem(['rules'], `must be a list of rules, not ${describe(top.rules)}`);
    } else if (Array.isArray(top.rules)) {
      const seen = new Map<string, number>();
      for (const [index, item] of top.rules.entries()) {
        const name = (item as { name?: unknown } | null)?.name;
        if (typeof name === 'string') {
          ruleNames.set(index, name);
          const first = seen.get(name);
          if (first !== undefined) reader.problem(['rules', index, 'name'], `'${name}' is already the name of rules[${first}]; rule names must be unique`);
          else seen.set(name, index);
        }
        const rule = readRule(reader, item, index);
        if (rule) rules.push({ rule, at: where(positionOf(yaml.contents, ['rules', index, 'name'])) });
      }
    }
  }
  // In the order they appear in the file, as an author reads it.
  const located = reader.problems.map((p) => ({
    offset:
      (p.expressionOffset !== undefined ? positionInScalar(text, yaml.contents, p.path, p.expressionOffset) : undefined) ??
      positionOf(yaml.contents, p.path) ??
      0,
    problem: p,
  }));
  located.sort((a, b) => a.offset - b.offset);
  return {
    ...(defaults && { defaults, defaultsAt: where(positionOf(yaml.contents, ['default'])) }),
    rules,
    problems: located.map(({ offset, problem }) => `${where(offset)}: ${formatPath(problem.path, ruleNames)}: ${problem.message}`),
  };
}

/**
 * Parses and validates a policy document. Every problem is named in one error — file, line,
 * column, the field's path and the rule's name — so an author fixes them all in one go.
 */
export function parsePolicyDocument(text: string, source: string): ActivePolicy {
  return parsePolicyDocuments([{ source, text }], source);
}

/**
 * Parses a policy made of several documents (a policy directory: one file per concern). Each has
 * `version: 1` and rules; exactly one sets `default`; rule names are unique across them all.
 * The set is refused as a whole if any document has a problem, all of them named at once.
 */
export function parsePolicyDocuments(documents: readonly PolicySourceDocument[], source: string): ActivePolicy {
  const single = documents.length === 1;
  const parts = documents.map((document) => readDocumentPart(document.text, document.source, single));
  const problems = parts.flatMap((part) => part.problems);
  if (documents.length === 0) problems.push(`${source} holds no policy document (*.yaml or *.yml); add one with version: 1, default and rules`);
  const withDefaults = parts.filter((part) => part.defaults);
  if (!single && documents.length > 0 && withDefaults.length === 0) {
    problems.push(`${source}: no document sets default; exactly one must say the effect for agent, human and service when no rule matches`);
  }
  for (const extra of withDefaults.slice(1)) {
    problems.push(`${extra.defaultsAt}: default: is already set at ${withDefaults[0]!.defaultsAt}; exactly one document may set default`);
  }
  const firstAt = new Map<string, string>();
  for (const { rule, at } of parts.flatMap((part) => part.rules)) {
    const first = firstAt.get(rule.name);
    if (first !== undefined && first.split(':')[0] !== at.split(':')[0]) problems.push(`${at}: rule '${rule.name}' is already defined at ${first}; rule names must be unique`);
    else if (first === undefined) firstAt.set(rule.name, at);
  }
  if (problems.length > 0) throw invalid(source, problems);
  // A stable sort keeps document order (files in name order) among rules of equal priority.
  const ordered = parts.flatMap((part) => part.rules.map(({ rule }) => rule)).sort((a, b) => b.priority - a.priority);
  const document: PolicyDocument = { version: 1, defaults: withDefaults[0]!.defaults as Record<IdentityKindName, DefaultEffect>, rules: ordered };
  const text = single ? documents[0]!.text : documents.map((d) => `# --- ${d.source}\n${d.text}`).join('\n');
  return { document, version: policyVersion(document), source, text };
}

export function policyVersion(document: PolicyDocument): string {
  return `sha256:${createHash('sha256').update(canonicalJson(document)).digest('hex')}`;
}

function invalid(source: string, problems: readonly string[]): PolicyError {
  const n = problems.length;
  return new PolicyError(
    PolicyErrorCode.InvalidDocument,
    `policy ${source} is invalid (${n} problem${n === 1 ? '' : 's'}):\n` +
      problems.map((p) => `  - ${p}`).join('\n'),
  );
}
