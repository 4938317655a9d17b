import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BUILTIN_POLICY_SOURCE, BUILTIN_POLICY_YAML } from './builtin-policy.js';
import { parsePolicyDocument } from './policy-document.js';
import { PolicyError, PolicyErrorCode } from './policy-error.js';

function problemsOf(text: string): string {
  try {
    parsePolicyDocument(text, 'p.yaml');
  } catch (error) {
    assert.ok(error instanceof PolicyError);
    assert.equal(error.code, PolicyErrorCode.InvalidDocument);
    return error.message;
  }
  assert.fail('the document was accepted');
}

const MINIMAL = 'version: 1\ndefault: { agent: deny, human: allow, service: deny }\nrules: []\n';

describe('parsePolicyDocument', () => {
  it('accepts the built-in policy, rules in priority order', () => {
    const policy = parsePolicyDocument(BUILTIN_POLICY_YAML, BUILTIN_POLICY_SOURCE);
    const priorities = policy.document.rules.map((r) => r.priority);
    assert.deepEqual(priorities, [...priorities].sort((a, b) => b - a));
    assert.deepEqual(policy.document.defaults, { agent: 'deny', human: 'allow', service: 'deny' });
    assert.match(policy.version, /^sha256:[0-9a-f]{64}$/);
    assert.equal(policy.source, 'built-in');
  });

  it('versions the content, not its layout or comments', () => {
    const a = parsePolicyDocument(MINIMAL, 'a.yaml');
    const b = parsePolicyDocument(`# a comment\nversion: 1\nrules: []\ndefault:\n  service: deny\n  agent: deny\n  human: allow\n`, 'b.yaml');
    const c = parsePolicyDocument(MINIMAL.replace('human: allow', 'human: deny'), 'c.yaml');
    assert.equal(a.version, b.version);
    assert.notEqual(a.version, c.version);
  });

  it('takes a single value where a list is expected, and fills review defaults', () => {
    const policy = parsePolicyDocument(
      `${MINIMAL.replace('rules: []', '')}rules:
  - name: r
    priority: 1
    match: { identity: { kind: agent }, statement: { kind: delete } }
    effect: review
    review: { group: dba }
`,
      'p.yaml',
    );
    const rule = policy.document.rules[0]!;
    assert.deepEqual(rule.match, { identity: { kind: ['agent'] }, statement: { kind: ['delete'] } });
    assert.deepEqual(rule.review, { group: 'dba', quorum: 1, timeoutSeconds: 3600 });
    assert.equal(rule.reason, "rule 'r' requires approval from dba");
  });

  it('names every bad field in one error, with file, line, column and rule', () => {
    const message = problemsOf(`version: 1
default: { agent: deny, human: maybe }
rules:
  - name: reads
    priority: 10
    match:
      identity: { kind: [agent, robot] }
      statement: { kind: [select, selekt], has_where: no-thanks, flagz: [x] }
    effect: allow
  - name: holds
    priority: high
    effect: review
  - name: reads
    priority: 1
    effect: deny
  - priority: 2
    effect: allow
    masking_profile: ''
`);
    const expected = [
      'p.yaml:2:10: default.service: is required',
      "p.yaml:2:32: default.human: 'maybe' is not one of allow, deny",
      "p.yaml:7:33: rules[0] (reads).match.identity.kind[1]: 'robot' is not one of agent, human, service",
      "p.yaml:8:35: rules[0] (reads).match.statement.kind[1]: 'selekt' is not one of select, insert, update, delete, merge, truncate, ddl, dcl, copy, transaction, set, show, explain, session, call, do, execute, utility, opaque, shell",
      "p.yaml:8:55: rules[0] (reads).match.statement.has_where: must be true or false, not string 'no-thanks'",
      'p.yaml:8:73: rules[0] (reads).match.statement.flagz: is not a known field; expected one of kind, writes, reads, functions, programs, has_where, flags, opaque',
      'p.yaml:10:5: rules[1] (holds).review: must be a mapping with group, quorum, timeout_seconds, not empty',
      "p.yaml:11:15: rules[1] (holds).priority: must be a whole number from -1000000 to 1000000, not string 'high'",
      'p.yaml:13:5: rules[2] (reads).reason: is required',
      "p.yaml:13:11: rules[2] (reads).name: 'reads' is already the name of rules[0]; rule names must be unique",
      'p.yaml:16:5: rules[3].name: is required',
      "p.yaml:18:22: rules[3].masking_profile: must be a non-empty string, not string ''",
    ];
    assert.equal(message, `policy p.yaml is invalid (12 problems):\n${expected.map((line) => `  - ${line}`).join('\n')}`);
  });

  it('reports YAML syntax errors with their position', () => {
    assert.match(problemsOf('version: 1\nrules: [\n'), /^policy p\.yaml is invalid \(\d problems?\):\n {2}- p\.yaml:\d+:\d+: /);
    assert.match(problemsOf('a: 1\na: 2\n'), /p\.yaml:2:1: Map keys must be unique/);
  });

  it('refuses a document that is not a mapping, a missing default and an unsupported version', () => {
    assert.match(problemsOf('- 1\n'), /\(document\): must be a mapping with version, default, rules, not a list/);
    assert.match(problemsOf('version: 2\nrules: []\n'), /version: number 2 is not supported; use version: 1/);
    assert.match(problemsOf('version: 1\nrules: []\n'), /default: is required/);
    assert.match(problemsOf(`${MINIMAL.replace('rules: []', 'rules: {}')}`), /rules: must be a list of rules, not a mapping/);
  });

  it('refuses empty lists and review settings on a rule that is not a review', () => {
    const message = problemsOf(`${MINIMAL.replace('rules: []', '')}rules:
  - name: r
    priority: 1
    match: { statement: { reads: [] }, target: { labels: { env: [prod] } } }
    effect: allow
    review: { group: dba }
`);
    assert.match(message, /rules\[0\] \(r\)\.match\.statement\.reads: must be a non-empty list of strings, not a list/);
    assert.match(message, /rules\[0\] \(r\)\.match\.target\.labels\.env: must be a string, not a list/);
    assert.match(message, /rules\[0\] \(r\)\.review: is only for effect review; this rule's effect is allow/);
  });
});
