import type { Effect, IdentityKindName, PolicyDocument, PolicyRule, ReviewRequirement } from './policy-document.js';
import type { StatementAnalysis } from './sql-analysis.js';

/** What a decision is made on: the documented policy input. */
export interface DecisionInput {
  readonly identity: { readonly id: string; readonly kind: IdentityKindName; readonly groups: readonly string[] };
  readonly target: { readonly name: string; readonly type: string; readonly labels: Readonly<Record<string, string>> };
  readonly statement: StatementAnalysis;
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
}

interface Condition {
  readonly path: string;
  test(input: DecisionInput): ConditionResult;
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
    path,
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
    path,
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
    path,
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
      path: 'target.name',
      test: (input) =>
        globs.some((glob) => glob.test(input.target.name))
          ? { holds: true, detail: `target.name '${input.target.name}' matches` }
          : { holds: false, detail: `target.name '${input.target.name}' matches none of ${target.name!.join(', ')}` },
    });
  }
  for (const [label, wanted] of Object.entries(target?.labels ?? {})) {
    const path = `target.labels.${label}`;
    conditions.push({
      path,
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
      path: 'statement.opaque',
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
      path: 'statement.has_where',
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
    for (const compiled of this.rules) {
      let holds = true;
      for (const condition of compiled.conditions) {
        read.add(condition.path);
        if (!condition.test(input).holds) {
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
    let decided = false;
    const evaluations = this.rules.map(({ rule, conditions }) => {
      const results = conditions.map((condition) => condition.test(input));
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

function dependencies(read: ReadonlySet<string>, statement: StatementAnalysis): string[] {
  const paths = [...read];
  if (paths.some((path) => path.startsWith('statement.'))) paths.push(statement.textSensitive ? 'command.text' : 'command.fingerprint');
  return paths.sort();
}
