import type { CelActivation } from './cel-condition.js';
import type { Effect, IdentityKindName, PolicyDocument, PolicyRule, ReviewRequirement } from './policy-document.js';
import type { StatementAnalysis } from './sql-analysis.js';

export type CommandProtocol = 'postgres' | 'ssh';

/** What the caller knows of the reasoning behind a command (an agent's trace). */
export interface TraceFeatures {
  readonly present: boolean;
  readonly confidence: number;
  readonly model: string;
  readonly tags: readonly string[];
}

/** What a decision is made on: the documented policy input (README, "The policy input"). */
export interface DecisionInput {
  readonly identity: { readonly id: string; readonly kind: IdentityKindName; readonly groups: readonly string[] };
  readonly target: { readonly name: string; readonly type: string; readonly labels: Readonly<Record<string, string>> };
  /** The analysis of the SQL statement or shell command. */
  readonly statement: StatementAnalysis;
  /** Absent: a PostgreSQL statement, not part of a multi-statement query, text unknown to CEL. */
  readonly command?: { readonly protocol: CommandProtocol; readonly text: string; readonly multiStatement: boolean };
  /** Absent: no trace. */
  readonly trace?: TraceFeatures;
  /** When the command is decided. Absent: a `when` reading time fails, and so denies. */
  readonly time?: Date;
  readonly session?: Readonly<Record<string, string>>;
}

const NO_TRACE: TraceFeatures = { present: false, confidence: 0, model: '', tags: [] };

/** The CEL variables for one input (names as documented; ints are bigint, as CEL's int is). */
export function celActivationOf(input: DecisionInput): CelActivation {
  const s = input.statement;
  const trace = input.trace ?? NO_TRACE;
  const time = input.time;
  return {
    identity: { id: input.identity.id, kind: input.identity.kind, groups: [...input.identity.groups] },
    target: { name: input.target.name, type: input.target.type, labels: new Map(Object.entries(input.target.labels)) },
    command: {
      protocol: input.command?.protocol ?? 'postgres',
      text: input.command?.text ?? '',
      kind: s.kind,
      opaque: s.opaque,
      opaque_reason: s.opaqueReason,
      reads: [...s.reads],
      writes: [...s.writes],
      functions: [...s.functions],
      // Only an UPDATE or DELETE can lack its WHERE: any other statement filters nothing away.
      has_where: s.hasWhere ?? true,
      flags: [...s.flags],
      multi_statement: (input.command?.multiStatement ?? false) || s.flags.includes('multiple_statements'),
      programs: [...(s.programs ?? [])],
    },
    trace: { present: trace.present, confidence: trace.confidence, model: trace.model, tags: [...trace.tags] },
    // Without a time, `time` has no fields: reading one is a run-time error, which denies.
    time: time
      ? {
          hour: BigInt(time.getUTCHours()),
          minute: BigInt(time.getUTCMinutes()),
          weekday: BigInt(time.getUTCDay()),
          date: time.toISOString().slice(0, 10),
        }
      : new Map(),
    session: new Map(Object.entries(input.session ?? {})),
  };
}

export interface StatementDecision {
  readonly effect: Effect;
  /** The deciding rule's name; `default` when none matched, `opaque-guard` when that stepped in. */
  readonly rule: string;
  readonly reason: string;
  readonly maskingProfile: string;
  readonly review?: ReviewRequirement;
  /** Input paths this decision read: its cache key (see policy.proto, DecideResponse.depends_on). */
  readonly dependsOn: readonly string[];
}

export interface RuleEvaluation {
  readonly rule: string;
  readonly priority: number;
  readonly matched: boolean;
  readonly detail: string;
}

export const DEFAULT_RULE = 'default';
export const OPAQUE_GUARD_RULE = 'opaque-guard';

interface ConditionResult {
  readonly holds: boolean;
  /** "statement.kind is 'delete', not one of select, show" */
  readonly detail: string;
  /** Set when the condition could not be evaluated (a CEL run-time error): the rule denies. */
  readonly error?: string;
}

interface Condition {
  /** The input paths the condition reads. */
  readonly paths: readonly string[];
  test(input: DecisionInput, activation: () => CelActivation): ConditionResult;
}

interface CompiledRule {
  readonly rule: PolicyRule;
  readonly conditions: readonly Condition[];
}

function globToRegExp(glob: string): RegExp {
  const body = glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${body}$`);
}

/**
 * A table pattern: without a schema it matches that table in any schema; with one it matches
 * that schema's table, and also the bare name (which may resolve there through search_path).
 */
function tableMatcher(pattern: string): (table: string) => boolean {
  const parts = pattern.split('.');
  const whole = globToRegExp(pattern);
  const last = globToRegExp(parts[parts.length - 1]!);
  return (table) => {
    const tableParts = table.split('.');
    const bare = tableParts[tableParts.length - 1]!;
    if (parts.length === 1) return last.test(bare);
    if (tableParts.length === 1) return last.test(bare);
    // db.schema.table written in the statement also matches a schema.table pattern.
    return whole.test(table) || (tableParts.length > parts.length && whole.test(tableParts.slice(-parts.length).join('.')));
  };
}

const list = (values: readonly string[]) => (values.length === 0 ? 'none' : values.join(', '));

function anyOf(path: string, wanted: readonly string[], actual: (input: DecisionInput) => string): Condition {
  const set = new Set(wanted);
  return {
    paths: [path],
    test(input) {
      const value = actual(input);
      return set.has(value)
        ? { holds: true, detail: `${path} is '${value}'` }
        : { holds: false, detail: `${path} is '${value}', not one of ${wanted.join(', ')}` };
    },
  };
}

function overlaps(path: string, wanted: readonly string[], actual: (input: DecisionInput) => readonly string[]): Condition {
  const set = new Set(wanted);
  return {
    paths: [path],
    test(input) {
      const values = actual(input);
      const hit = values.find((value) => set.has(value));
      return hit !== undefined
        ? { holds: true, detail: `${path} includes '${hit}'` }
        : { holds: false, detail: `${path} (${list(values)}) includes none of ${wanted.join(', ')}` };
    },
  };
}

function tables(path: string, patterns: readonly string[], actual: (input: DecisionInput) => readonly string[]): Condition {
  const matchers = patterns.map(tableMatcher);
  return {
    paths: [path],
    test(input) {
      const values = actual(input);
      const hit = values.find((table) => matchers.some((matches) => matches(table)));
      return hit !== undefined
        ? { holds: true, detail: `${path} includes '${hit}'` }
        : { holds: false, detail: `${path} (${list(values)}) matches none of ${patterns.join(', ')}` };
    },
  };
}

function compileRule(rule: PolicyRule): CompiledRule {
  const conditions: Condition[] = [];
  const { identity, target, statement } = rule.match;
  if (identity?.kind) conditions.push(anyOf('identity.kind', identity.kind, (i) => i.identity.kind));
  if (identity?.groups) conditions.push(overlaps('identity.groups', identity.groups, (i) => i.identity.groups));
  if (target?.name) {
    const globs = target.name.map(globToRegExp);
    conditions.push({
      paths: ['target.name'],
      test: (input) =>
        globs.some((glob) => glob.test(input.target.name))
          ? { holds: true, detail: `target.name '${input.target.name}' matches` }
          : { holds: false, detail: `target.name '${input.target.name}' matches none of ${target.name!.join(', ')}` },
    });
  }
  for (const [label, wanted] of Object.entries(target?.labels ?? {})) {
    const path = `target.labels.${label}`;
    conditions.push({
      paths: [path],
      test: (input) => {
        const value = input.target.labels[label];
        return value === wanted
          ? { holds: true, detail: `${path} is '${wanted}'` }
          : { holds: false, detail: `${path} is ${value === undefined ? 'not set' : `'${value}'`}, not '${wanted}'` };
      },
    });
  }
  if (statement?.opaque !== undefined) {
    const wanted = statement.opaque;
    conditions.push({
      paths: ['statement.opaque'],
      test: (input) => ({
        holds: input.statement.opaque === wanted,
        detail: input.statement.opaque ? `the statement is opaque (${input.statement.opaqueReason})` : 'the statement is not opaque',
      }),
    });
  }
  if (statement?.kind) conditions.push(anyOf('statement.kind', statement.kind, (i) => i.statement.kind));
  if (statement?.hasWhere !== undefined) {
    const wanted = statement.hasWhere;
    conditions.push({
      paths: ['statement.has_where'],
      test: (input) => {
        const actual = input.statement.hasWhere;
        const detail =
          actual === undefined ? 'statement.has_where does not apply (no UPDATE or DELETE)' : `statement.has_where is ${actual}`;
        return { holds: actual === wanted, detail };
      },
    });
  }
  if (statement?.flags) conditions.push(overlaps('statement.flags', statement.flags, (i) => i.statement.flags));
  if (statement?.writes) conditions.push(tables('statement.writes', statement.writes, (i) => i.statement.writes));
  if (statement?.reads) conditions.push(tables('statement.reads', statement.reads, (i) => i.statement.reads));
  // Schema-qualified names follow the same rule as tables: a bare pattern matches in any schema.
  if (statement?.functions) conditions.push(tables('statement.functions', statement.functions, (i) => i.statement.functions));
  if (statement?.programs) conditions.push(tables('statement.programs', statement.programs, (i) => i.statement.programs ?? []));
  // The CEL condition last: the cheap match fields above rule most statements out first.
  if (rule.when) {
    const when = rule.when;
    conditions.push({
      paths: when.paths,
      test: (_input, activation) => {
        const outcome = when.evaluate(activation());
        if (!outcome.ok) {
          return { holds: false, detail: `when (${when.expression}) failed: ${outcome.error}`, error: outcome.error };
        }
        return { holds: outcome.holds, detail: `when (${when.expression}) is ${outcome.holds}` };
      },
    });
  }
  return { rule, conditions };
}

/**
 * Decides statements against one policy document: the first matching rule by priority wins,
 * else the identity kind's explicit default. Pure: the same document and input give the same
 * decision, which is what lets the gateway cache it.
 */
export class PolicyEngine {
  private readonly rules: readonly CompiledRule[];

  constructor(private readonly document: PolicyDocument) {
    this.rules = document.rules.map(compileRule);
  }

  decide(input: DecisionInput): StatementDecision {
    const read = new Set<string>();
    const activation = lazyActivation(input);
    for (const compiled of this.rules) {
      let holds = true;
      for (const condition of compiled.conditions) {
        for (const path of condition.paths) read.add(path);
        const result = condition.test(input, activation);
        if (result.error !== undefined) return this.failed(input, compiled.rule, result.error, read);
        if (!result.holds) {
          holds = false;
          break;
        }
      }
      if (holds) return this.finish(input, compiled.rule, read);
    }
    read.add('identity.kind');
    return this.finish(input, undefined, read);
  }

  explain(input: DecisionInput): { decision: StatementDecision; evaluations: RuleEvaluation[] } {
    const decision = this.decide(input);
    const activation = lazyActivation(input);
    let decided = false;
    const evaluations = this.rules.map(({ rule, conditions }) => {
      const results = conditions.map((condition) => condition.test(input, activation));
      const failed = results.filter((result) => !result.holds);
      const matched = failed.length === 0;
      let detail = matched
        ? results.length === 0
          ? 'matches every statement (no conditions)'
          : results.map((result) => result.detail).join('; ')
        : failed.map((result) => result.detail).join('; ');
      if (matched && decided) detail += ` (matches, but an earlier rule decided)`;
      if (matched) decided = true;
      return { rule: rule.name, priority: rule.priority, matched, detail };
    });
    return { decision, evaluations };
  }

  /** A rule whose condition could not be evaluated denies, saying why: never allow by accident. */
  private failed(input: DecisionInput, rule: PolicyRule, error: string, read: Set<string>): StatementDecision {
    return {
      effect: 'deny',
      rule: rule.name,
      reason: `rule '${rule.name}' could not be evaluated (${error}), so the command is denied; fix the rule's when expression`,
      maskingProfile: '',
      dependsOn: dependencies(read, input.statement),
    };
  }

  private finish(input: DecisionInput, rule: PolicyRule | undefined, read: Set<string>): StatementDecision {
    const kind = input.statement.kind;
    let decision: Omit<StatementDecision, 'dependsOn'>;
    if (rule) {
      decision = {
        effect: rule.effect,
        rule: rule.name,
        reason: rule.reason,
        maskingProfile: rule.maskingProfile,
        ...(rule.review && { review: rule.review }),
      };
    } else {
      const effect = this.document.defaults[input.identity.kind];
      decision = {
        effect,
        rule: DEFAULT_RULE,
        reason:
          effect === 'deny'
            ? `no policy rule allows ${input.identity.kind} identities to run this ${kind} statement, and the default for ${input.identity.kind} identities is deny`
            : `no policy rule matched; the default for ${input.identity.kind} identities is allow`,
        maskingProfile: '',
      };
    }
    // An opaque statement never falls through to allow: only a rule that asks for opaque
    // statements by name (statement.opaque: true) may allow one.
    if (decision.effect === 'allow') {
      read.add('statement.opaque');
      if (input.statement.opaque && rule?.match.statement?.opaque !== true) {
        decision = {
          effect: 'deny',
          rule: OPAQUE_GUARD_RULE,
          reason: `tracegate cannot tell what this statement does: ${input.statement.opaqueReason}. It is denied unless a policy rule matching statement.opaque: true allows it`,
          maskingProfile: '',
        };
      }
    }
    return { ...decision, dependsOn: dependencies(read, input.statement) };
  }
}

function lazyActivation(input: DecisionInput): () => CelActivation {
  let activation: CelActivation | undefined;
  return () => (activation ??= celActivationOf(input));
}

/** Command fields given by the caller; every other command.* field is read from the analysis. */
const COMMAND_FIELDS_GIVEN = new Set(['command.protocol', 'command.text', 'command.multi_statement', 'command.fingerprint']);

/** True when the path is a result of analysing the text (so the text, or its fingerprint, keys it). */
function analysed(path: string): boolean {
  return path.startsWith('statement.') || path === 'command' || (path.startsWith('command.') && !COMMAND_FIELDS_GIVEN.has(path));
}

function dependencies(read: ReadonlySet<string>, statement: StatementAnalysis): string[] {
  const paths = new Set(read);
  if ([...read].some(analysed)) paths.add(statement.textSensitive ? 'command.text' : 'command.fingerprint');
  return [...paths].sort();
}
