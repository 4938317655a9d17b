import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CelCompileError, compileCelCondition } from './cel-condition.js';
import { parsePolicyDocument } from './policy-document.js';
import { PolicyEngine, type DecisionInput } from './policy-engine.js';
import { analyseStatement, loadSqlParser } from './sql-analysis.js';

await loadSqlParser();

function compileError(expression: string): CelCompileError {
  try {
    compileCelCondition(expression);
  } catch (error) {
    assert.ok(error instanceof CelCompileError, String(error));
    return error;
  }
  assert.fail(`'${expression}' compiled`);
}

function input(sql: string, extra: Partial<DecisionInput> = {}): DecisionInput {
  return {
    identity: { id: 'agent-7', kind: 'agent', groups: ['etl'] },
    target: { name: 'billing', type: 'postgres', labels: { env: 'production' } },
    statement: analyseStatement(sql),
    time: new Date('2026-11-22T10:30:00Z'),
    ...extra,
  };
}

describe('CEL conditions', () => {
  it('collects the input paths an expression references, map keys included, comprehension variables excluded', () => {
    const condition = compileCelCondition(
      `identity.kind == 'agent' && 'dba' in identity.groups && target.labels['env'] == 'production' && has(target.labels.tier)` +
        ` && command.writes.exists(t, t.startsWith('public.')) && trace.confidence < 0.8 && session.client == 'psql'`,
    );
    assert.deepEqual(condition.paths, [
      'command.writes',
      'identity.groups',
      'identity.kind',
      'session.client',
      'target.labels.env',
      'target.labels.tier',
      'trace.confidence',
    ]);
  });

  it('a label chosen at run time depends on all labels', () => {
    assert.deepEqual(compileCelCondition(`target.labels[session.label] == 'x'`).paths, ['session.label', 'target.labels']);
  });

  it('refuses unknown variables and fields, naming what exists and where', () => {
    const unknownRoot = compileError(`identity.kind == 'agent' && user.name == 'x'`);
    assert.match(unknownRoot.message, /'user' is not part of the policy input; use one of identity, target, command, trace, time, session/);
    assert.equal(unknownRoot.problem.offset, 28);
    const unknownField = compileError(`trace.confidense < 0.8`);
    assert.match(unknownField.message, /'trace' has no field 'confidense'; it has present, confidence, model, tags/);
    assert.match(compileError(`identity.kind == `).message, /^CEL syntax error: /);
    assert.match(compileError(`identity.groups.exists(g, isAdmin(g))`).message, /^'isAdmin' is not a function CEL knows here/);
    assert.match(compileError(`identity.id.shout() == 'X'`).message, /^'shout' is not a function CEL knows here/);
    // The standard library, the strings extension and the macros compile.
    compileCelCondition(
      `size(identity.groups) > 0 && identity.id.lowerAscii().startsWith('a') && command.writes.all(t, !t.matches('^pg_')) && -1 < 0 && (trace.present ? trace.confidence : 1.0) >= 0.5 && command.reads.exists_one(t, t.contains('x')) && command.flags.filter(f, f != '').size() >= 0`,
    );
  });

  it('says why an evaluation failed instead of matching', () => {
    const condition = compileCelCondition(`target.labels.tier == 'gold'`);
    const outcome = condition.evaluate({ identity: {}, target: { labels: new Map() }, command: {}, trace: {}, time: {}, session: new Map() });
    assert.equal(outcome.ok, false);
    assert.match(!outcome.ok ? outcome.error : '', /tier/);
    const notBoolean = compileCelCondition(`identity.kind`).evaluate({ identity: { kind: 'agent' }, target: {}, command: {}, trace: {}, time: {}, session: new Map() });
    assert.deepEqual(notBoolean, { ok: false, error: "it gave the string 'agent', not true or false" });
  });
});

describe('rules with when', () => {
  const yaml = (when: string) => `version: 1
default: { agent: deny, human: allow, service: deny }
rules:
  - name: low-confidence-writes
    priority: 500
    match: { identity: { kind: agent } }
    when: ${when}
    effect: review
    review: { group: dba }
  - name: agents-read
    priority: 100
    match: { identity: { kind: agent }, statement: { kind: select } }
    effect: allow
`;

  it('names file, line, column and rule for a compile error in a plain, quoted or block expression', () => {
    assert.throws(
      () => parsePolicyDocument(yaml(`command.kind == 'update' && trace.confidance < 0.8`), 'p.yaml'),
      (error: Error) => error.message.includes(`p.yaml:7:45: rules[0] (low-confidence-writes).when: 'trace' has no field 'confidance'`),
    );
    assert.throws(
      () => parsePolicyDocument(yaml(`"command.kind == 'update' && nope"`), 'p.yaml'),
      (error: Error) => error.message.includes(`p.yaml:7:40: rules[0] (low-confidence-writes).when: 'nope' is not part of the policy input`),
    );
    assert.throws(
      () => parsePolicyDocument(yaml(`|\n      command.kind == 'update'\n        && trace.bogus`), 'p.yaml'),
      (error: Error) => error.message.includes(`p.yaml:9:18: rules[0] (low-confidence-writes).when: 'trace' has no field 'bogus'`),
    );
  });

  it('decides on trace features and lists trace paths in depends_on', () => {
    const engine = new PolicyEngine(parsePolicyDocument(yaml(`command.kind in ['insert', 'update', 'delete'] && trace.confidence < 0.8`), 'p.yaml').document);
    const low = engine.decide(input('UPDATE invoices SET paid = true WHERE id = 1', { trace: { present: true, confidence: 0.5, model: 'm', tags: [] } }));
    assert.equal(low.effect, 'review');
    assert.equal(low.rule, 'low-confidence-writes');
    assert.deepEqual(low.dependsOn, ['command.fingerprint', 'command.kind', 'identity.kind', 'trace.confidence']);
    const high = engine.decide(input('UPDATE invoices SET paid = true WHERE id = 1', { trace: { present: true, confidence: 0.9, model: 'm', tags: [] } }));
    assert.equal(high.rule, 'default');
    assert.equal(high.effect, 'deny');
    const read = engine.decide(input('SELECT 1'));
    assert.equal(read.rule, 'agents-read');
    assert.deepEqual(read.dependsOn, ['command.fingerprint', 'command.kind', 'identity.kind', 'statement.kind', 'statement.opaque', 'trace.confidence']);
  });

  it('a when that fails at run time denies and says why, in Decide and in Explain', () => {
    const engine = new PolicyEngine(parsePolicyDocument(yaml(`target.labels.tier == 'gold'`), 'p.yaml').document);
    const decision = engine.decide(input('SELECT 1'));
    assert.equal(decision.effect, 'deny');
    assert.equal(decision.rule, 'low-confidence-writes');
    assert.match(decision.reason, /rule 'low-confidence-writes' could not be evaluated \(.*tier.*\), so the command is denied/);
    assert.deepEqual(decision.dependsOn, ['identity.kind', 'target.labels.tier']);
    const { evaluations } = engine.explain(input('SELECT 1'));
    assert.match(evaluations[0]!.detail, /when \(target.labels.tier == 'gold'\) failed: /);
    assert.equal(evaluations[0]!.matched, false);
  });

  it('reads time and session attributes; without a time, a rule on time denies', () => {
    const engine = new PolicyEngine(parsePolicyDocument(yaml(`time.hour >= 9 && time.hour < 17 && session.ticket != ''`), 'p.yaml').document);
    assert.equal(engine.decide(input('SELECT 1', { session: { ticket: 'OPS-1' } })).effect, 'review');
    assert.equal(engine.decide(input('SELECT 1', { session: { ticket: '' } })).rule, 'agents-read');
    assert.equal(engine.decide(input('SELECT 1', { time: new Date('2026-11-22T20:00:00Z'), session: { ticket: 'x' } })).rule, 'agents-read');
    const { time: _time, ...timeless } = input('SELECT 1', { session: { ticket: 'x' } });
    assert.equal(engine.decide(timeless).effect, 'deny');
  });
});
