import { celEnv, isCelError, isCelList, isCelMap, parse, plan, type CelValue } from '@bufbuild/cel';
import { strings } from '@bufbuild/cel/ext';

/**
 * The CEL input a rule's `when` expression sees (services/policy/README.md documents it). Each
 * root names the fields it has, so a misspelt field is a load-time error, not a rule that
 * silently never matches: @bufbuild/cel has no type checker, so this is the check.
 * `labels` and `session` are maps: any key may be asked for.
 */
export const CEL_INPUT_FIELDS = {
  identity: ['id', 'kind', 'groups'],
  target: ['name', 'type', 'labels'],
  command: [
    'protocol',
    'text',
    'kind',
    'opaque',
    'opaque_reason',
    'reads',
    'writes',
    'functions',
    'has_where',
    'flags',
    'multi_statement',
    'programs',
  ],
  trace: ['present', 'confidence', 'model', 'tags'],
  time: ['hour', 'minute', 'weekday', 'date'],
  /** Session attributes: a map. */
  session: undefined,
} as const satisfies Record<string, readonly string[] | undefined>;

export type CelRoot = keyof typeof CEL_INPUT_FIELDS;
const ROOTS = Object.keys(CEL_INPUT_FIELDS) as CelRoot[];
/** A map field below a root: a key under it is a path of its own (target.labels.env). */
const MAP_PATHS = new Set(['target.labels']);

/** The values bound to the expression's variables (see {@link CEL_INPUT_FIELDS}). */
export type CelActivation = Readonly<Record<CelRoot, unknown>>;

/** Where in the expression a compile problem is, 1-based, as a person reads it. */
export interface CelProblem {
  readonly message: string;
  /** 0-based offset into the expression. */
  readonly offset: number;
}

export class CelCompileError extends Error {
  override readonly name = 'CelCompileError';
  constructor(readonly problem: CelProblem) {
    super(problem.message);
  }
}

export type CelOutcome = { readonly ok: true; readonly holds: boolean } | { readonly ok: false; readonly error: string };

/** One `when` expression, parsed, checked and planned once when the document loads. */
export interface CelCondition {
  readonly expression: string;
  /** Input paths the expression references, e.g. identity.groups, target.labels.env, trace.confidence. */
  readonly paths: readonly string[];
  evaluate(activation: CelActivation): CelOutcome;
}

const env = celEnv({ funcs: strings });
/** Operators the planner evaluates itself rather than through the function registry. */
const PLANNED_OPERATORS = new Set(['_&&_', '_||_', '_?_:_', '_[_]', '-_', '@not_strictly_false']);

type Expr = ReturnType<typeof parse>['expr'];

/**
 * Compiles a CEL condition: parses it, checks every variable and field it names against the
 * documented input, collects the input paths it references (the decision's cache key), and
 * plans it for evaluation. Throws {@link CelCompileError} with the offset of the problem.
 */
export function compileCelCondition(expression: string): CelCondition {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(expression);
  } catch (error) {
    const located = error as { rawMessage?: string; location?: { start?: { offset?: number } } };
    throw new CelCompileError({
      message: `CEL syntax error: ${located.rawMessage ?? (error instanceof Error ? error.message : String(error))}`,
      offset: located.location?.start?.offset ?? 0,
    });
  }
  const positions = parsed.sourceInfo?.positions ?? {};
  const offsetOf = (expr: Expr): number => (positions as Record<string, number>)[String(expr.id)] ?? 0;
  const paths = new Set<string>();

  /** The dotted path of a select/index chain rooted at an input variable, or undefined. */
  const pathOf = (expr: Expr, bound: ReadonlySet<string>): { path: string[]; nodes: Expr[] } | undefined => {
    const kind = expr.exprKind;
    if (kind.case === 'identExpr') return bound.has(kind.value.name) ? undefined : { path: [kind.value.name], nodes: [expr] };
    if (kind.case === 'selectExpr' && kind.value.operand) {
      const inner = pathOf(kind.value.operand, bound);
      return inner && { path: [...inner.path, kind.value.field], nodes: [...inner.nodes, expr] };
    }
    if (kind.case === 'callExpr' && kind.value.function === '_[_]' && !kind.value.target) {
      const [operand, index] = kind.value.args;
      const key = index?.exprKind.case === 'constExpr' && index.exprKind.value.constantKind.case === 'stringValue' ? index.exprKind.value.constantKind.value : undefined;
      if (!operand || key === undefined) return undefined;
      const inner = pathOf(operand, bound);
      return inner && { path: [...inner.path, key], nodes: [...inner.nodes, expr] };
    }
    return undefined;
  };

  const check = (path: readonly string[], nodes: readonly Expr[]): void => {
    const [root, field] = path;
    if (!(ROOTS as readonly string[]).includes(root!)) {
      throw new CelCompileError({ message: `'${root}' is not part of the policy input; use one of ${ROOTS.join(', ')}`, offset: offsetOf(nodes[0]!) });
    }
    const fields = CEL_INPUT_FIELDS[root as CelRoot] as readonly string[] | undefined;
    if (fields && field !== undefined && !fields.includes(field)) {
      // A select's position is its dot: the field's name starts after it.
      throw new CelCompileError({ message: `'${root}' has no field '${field}'; it has ${fields.join(', ')}`, offset: offsetOf(nodes[1]!) + 1 });
    }
  };

  const record = (path: readonly string[]): void => {
    // A key under a map is a path of its own (target.labels.env); anything deeper is a value.
    paths.add(path.slice(0, MAP_PATHS.has(path.slice(0, 2).join('.')) ? 3 : 2).join('.'));
  };

  const walk = (expr: Expr | undefined, bound: ReadonlySet<string>): void => {
    if (!expr) return;
    const chain = pathOf(expr, bound);
    if (chain) {
      check(chain.path, chain.nodes);
      record(chain.path);
      return;
    }
    const kind = expr.exprKind;
    switch (kind.case) {
      case 'selectExpr':
        walk(kind.value.operand, bound);
        return;
      case 'callExpr':
        // Without a type checker, an unknown function would only fail when a decision reaches it.
        if (!PLANNED_OPERATORS.has(kind.value.function) && !env.funcs.find(kind.value.function)) {
          throw new CelCompileError({
            message: `'${kind.value.function}' is not a function CEL knows here (the standard library and the strings extension)`,
            offset: offsetOf(expr),
          });
        }
        walk(kind.value.target, bound);
        for (const arg of kind.value.args) walk(arg, bound);
        return;
      case 'listExpr':
        for (const element of kind.value.elements) walk(element, bound);
        return;
      case 'structExpr':
        for (const entry of kind.value.entries) {
          if (entry.keyKind.case === 'mapKey') walk(entry.keyKind.value, bound);
          walk(entry.value, bound);
        }
        return;
      case 'comprehensionExpr': {
        const c = kind.value;
        walk(c.iterRange, bound);
        walk(c.accuInit, bound);
        const inner = new Set([...bound, c.iterVar, c.iterVar2, c.accuVar].filter((v) => v !== ''));
        walk(c.loopCondition, inner);
        walk(c.loopStep, inner);
        walk(c.result, inner);
        return;
      }
      default:
        return;
    }
  };
  walk(parsed.expr, new Set());

  const run = plan(env, parsed);
  return {
    expression,
    paths: [...paths].sort(),
    evaluate(activation) {
      let result: ReturnType<typeof run>;
      try {
        result = run(activation as never);
      } catch (error) {
        return { ok: false, error: error instanceof Error ? error.message : String(error) };
      }
      if (isCelError(result)) return { ok: false, error: result.message };
      if (typeof result !== 'boolean') return { ok: false, error: `it gave ${describeValue(result)}, not true or false` };
      return { ok: true, holds: result };
    },
  };
}

function describeValue(value: CelValue): string {
  if (isCelList(value)) return 'a list';
  if (isCelMap(value)) return 'a map';
  if (typeof value === 'string') return `the string '${value}'`;
  return `${typeof value} ${String(value)}`;
}
