import { LineCounter, parseDocument, type Document } from 'yaml';
import { EFFECTS, IDENTITY_KINDS, type Effect, type IdentityKindName } from './policy-document.js';
import type { DecisionInput, PolicyEngine, StatementDecision } from './policy-engine.js';
import { PolicyError, PolicyErrorCode } from './policy-error.js';
import { analyseShellCommand } from './shell-analysis.js';
import { analyseStatement } from './sql-analysis.js';

/**
 * Table-driven examples that live beside a policy (`*.tests.yaml`): an input and the decision a
 * policy author expects for it. `tracegate policy test <dir>` runs them against the directory's
 * policy, offline.
 *
 * ```yaml
 * tests:
 *   - name: agents may not delete without a WHERE
 *     identity: { kind: agent, groups: [etl] }        # id defaults to "example"
 *     target: { name: billing, labels: { env: production } }
 *     sql: DELETE FROM invoices                        # or shell: rm -rf /
 *     trace: { confidence: 0.5, model: m, tags: [] }   # optional: present when given
 *     session: { ticket: OPS-1 }                       # optional
 *     time: 2026-01-05T12:00:00Z                       # optional; this is the default
 *     expect: { effect: deny, rule: agents-no-unfiltered-writes, reason: WHERE }   # reason: a part of it
 * ```
 */
export interface PolicyExample {
  readonly name: string;
  /** file:line:col of the example, for reports. */
  readonly at: string;
  readonly input: DecisionInput;
  readonly expect: { readonly effect: Effect; readonly rule?: string; readonly reason?: string; readonly reviewGroup?: string };
}

export interface ExampleResult {
  readonly example: PolicyExample;
  readonly decision: StatementDecision;
  /** Empty when the decision is the expected one. */
  readonly mismatches: readonly string[];
}

/** A Monday at noon UTC: examples are deterministic unless they say when. */
export const DEFAULT_EXAMPLE_TIME = '2026-01-05T12:00:00Z';

const EXAMPLE_FIELDS = ['name', 'identity', 'target', 'sql', 'shell', 'trace', 'session', 'time', 'expect'];

type Raw = Record<string, unknown>;

const isMapping = (value: unknown): value is Raw => value !== null && typeof value === 'object' && !Array.isArray(value);
const strings = (value: unknown): string[] => (Array.isArray(value) ? value.map(String) : value === undefined || value === null ? [] : [String(value)]);

/** Parses an examples file; every problem is named with file:line:col in one PolicyError. */
export function parsePolicyExamples(text: string, source: string): PolicyExample[] {
  const lineCounter = new LineCounter();
  const yaml: Document = parseDocument(text, { lineCounter, uniqueKeys: true });
  const where = (path: readonly (string | number)[]): string => {
    const node = yaml.getIn(path, true) as { range?: [number, number] } | undefined;
    const offset = node?.range?.[0];
    if (offset === undefined) return path.length > 0 ? where(path.slice(0, -1)) : source;
    const { line, col } = lineCounter.linePos(offset);
    return `${source}:${line}:${col}`;
  };
  if (yaml.errors.length > 0) {
    throw invalid(source, yaml.errors.map((error) => `${source}:${lineCounter.linePos(error.pos[0]).line}:${lineCounter.linePos(error.pos[0]).col}: ${error.message.split('\n')[0]}`));
  }
  const raw = yaml.toJS() as unknown;
  const problems: string[] = [];
  const examples: PolicyExample[] = [];
  const tests = isMapping(raw) ? raw.tests : undefined;
  if (!Array.isArray(tests)) throw invalid(source, [`${where(['tests'])}: tests: must be a list of examples (name, identity, target, sql or shell, expect)`]);
  for (const [i, item] of tests.entries()) {
    const path = ['tests', i];
    const problem = (field: string, message: string) => problems.push(`${where([...path, ...field.split('.').filter(Boolean)])}: tests[${i}]${field ? `.${field}` : ''}: ${message}`);
    if (!isMapping(item)) {
      problem('', 'must be a mapping with name, identity, sql or shell, and expect');
      continue;
    }
    for (const key of Object.keys(item)) if (!EXAMPLE_FIELDS.includes(key)) problem(key, `is not a known field; expected one of ${EXAMPLE_FIELDS.join(', ')}`);
    const name = typeof item.name === 'string' && item.name.trim() !== '' ? item.name : undefined;
    if (!name) problem('name', 'is required: say what the example shows');
    const identity = isMapping(item.identity) ? item.identity : undefined;
    const kind = identity?.kind;
    if (!(IDENTITY_KINDS as readonly unknown[]).includes(kind)) problem('identity.kind', `must be one of ${IDENTITY_KINDS.join(', ')}`);
    const target = isMapping(item.target) ? item.target : {};
    const labels = isMapping(target.labels) ? Object.fromEntries(Object.entries(target.labels).map(([k, v]) => [k, String(v)])) : {};
    const hasSql = typeof item.sql === 'string';
    const hasShell = typeof item.shell === 'string';
    if (hasSql === hasShell) problem('', 'needs exactly one of sql or shell: the command to decide');
    const expect = isMapping(item.expect) ? item.expect : undefined;
    const effect = expect?.effect;
    if (!(EFFECTS as readonly unknown[]).includes(effect)) problem('expect.effect', `must be one of ${EFFECTS.join(', ')}`);
    const timeText = item.time === undefined ? DEFAULT_EXAMPLE_TIME : item.time instanceof Date ? item.time.toISOString() : String(item.time);
    const time = new Date(timeText);
    if (Number.isNaN(time.getTime())) problem('time', `'${timeText}' is not a date and time; write it as ${DEFAULT_EXAMPLE_TIME}`);
    const trace = isMapping(item.trace) ? item.trace : undefined;
    const confidence = trace ? Number(trace.confidence ?? 1) : 0;
    if (trace && !(confidence >= 0 && confidence <= 1)) problem('trace.confidence', 'must be a number from 0 to 1');
    if (!name || !identity || hasSql === hasShell || !expect || problems.length > 0) continue;
    const text = String(hasSql ? item.sql : item.shell);
    examples.push({
      name,
      at: where(path),
      input: {
        identity: { id: typeof identity.id === 'string' ? identity.id : 'example', kind: kind as IdentityKindName, groups: strings(identity.groups) },
        target: { name: String(target.name ?? ''), type: String(target.type ?? (hasSql ? 'postgres' : 'ssh')), labels },
        statement: hasSql ? analyseStatement(text) : analyseShellCommand(text),
        command: { protocol: hasSql ? 'postgres' : 'ssh', text, multiStatement: false },
        trace: trace ? { present: true, confidence, model: String(trace.model ?? ''), tags: strings(trace.tags) } : { present: false, confidence: 0, model: '', tags: [] },
        time,
        session: isMapping(item.session) ? Object.fromEntries(Object.entries(item.session).map(([k, v]) => [k, String(v)])) : {},
      },
      expect: {
        effect: effect as Effect,
        ...(typeof expect.rule === 'string' && { rule: expect.rule }),
        ...(typeof expect.reason === 'string' && { reason: expect.reason }),
        ...(isMapping(expect.review) && typeof expect.review.group === 'string' && { reviewGroup: expect.review.group }),
      },
    });
  }
  if (problems.length > 0) throw invalid(source, problems);
  return examples;
}

/** Decides every example and compares with what it expects. */
export function runPolicyExamples(engine: PolicyEngine, examples: readonly PolicyExample[]): ExampleResult[] {
  return examples.map((example) => {
    const decision = engine.decide(example.input);
    const mismatches: string[] = [];
    const { expect } = example;
    if (decision.effect !== expect.effect) mismatches.push(`effect is ${decision.effect}, expected ${expect.effect}`);
    if (expect.rule !== undefined && decision.rule !== expect.rule) mismatches.push(`decided by rule '${decision.rule}', expected '${expect.rule}'`);
    if (expect.reason !== undefined && !decision.reason.includes(expect.reason)) mismatches.push(`reason "${decision.reason}" does not contain "${expect.reason}"`);
    if (expect.reviewGroup !== undefined && decision.review?.group !== expect.reviewGroup) {
      mismatches.push(`review group is ${decision.review?.group ?? 'none'}, expected ${expect.reviewGroup}`);
    }
    return { example, decision, mismatches };
  });
}

function invalid(source: string, problems: readonly string[]): PolicyError {
  const n = problems.length;
  return new PolicyError(PolicyErrorCode.InvalidDocument, `examples ${source} are invalid (${n} problem${n === 1 ? '' : 's'}):\n${problems.map((p) => `  - ${p}`).join('\n')}`);
}
