import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { readPolicyDirectory } from '../repositories/policy-file.repository.js';
import { parsePolicyDocument } from './policy-document.js';
import { PolicyEngine } from './policy-engine.js';
import { parsePolicyExamples, runPolicyExamples } from './policy-examples.js';
import { loadSqlParser } from './sql-analysis.js';

await loadSqlParser();

/** The example policies shipped with the project (examples/policies at the repository root). */
const EXAMPLES = fileURLToPath(new URL('../../../../examples/policies', import.meta.url));

describe('the example policies', () => {
  const policy = readPolicyDirectory(EXAMPLES);
  const engine = new PolicyEngine(policy.document);

  it('load as one policy from their directory', () => {
    assert.equal(policy.source, EXAMPLES);
    assert.ok(policy.document.rules.some((rule) => rule.name === 'agents-read-only-on-production'));
    assert.deepEqual(policy.document.defaults, { agent: 'deny', human: 'allow', service: 'deny' });
  });

  const files = readdirSync(EXAMPLES).filter((name) => name.endsWith('.tests.yaml'));
  it('ship examples for agents, DBAs and SSH', () => assert.deepEqual(files.sort(), ['agents.tests.yaml', 'dba.tests.yaml', 'ssh.tests.yaml']));
  for (const file of files) {
    const path = join(EXAMPLES, file);
    for (const result of runPolicyExamples(engine, parsePolicyExamples(readFileSync(path, 'utf8'), path))) {
      it(`${file}: ${result.example.name}`, () => assert.deepEqual(result.mismatches, [], result.decision.reason));
    }
  }
});

describe('policy examples', () => {
  const engine = new PolicyEngine(
    parsePolicyDocument(
      `version: 1
default: { agent: deny, human: allow, service: deny }
rules:
  - name: agents-read
    priority: 1
    match: { identity: { kind: agent }, statement: { kind: select } }
    effect: allow
`,
      'p.yaml',
    ).document,
  );

  it('report each way a decision differs from the expected one', () => {
    const [result] = runPolicyExamples(
      engine,
      parsePolicyExamples(
        `tests:
  - name: wrong on purpose
    identity: { kind: agent }
    sql: DELETE FROM t
    expect: { effect: review, rule: agents-writes, reason: approval, review: { group: dba } }
`,
        'x.tests.yaml',
      ),
    );
    assert.equal(result!.example.at, 'x.tests.yaml:2:5');
    assert.deepEqual(result!.mismatches, [
      'effect is deny, expected review',
      "decided by rule 'default', expected 'agents-writes'",
      `reason "${result!.decision.reason}" does not contain "approval"`,
      'review group is none, expected dba',
    ]);
  });

  it('name every problem of an examples file with file, line and column', () => {
    assert.throws(
      () =>
        parsePolicyExamples(
          `tests:
  - name: no command
    identity: { kind: robot }
    expect: { effect: maybe }
    colour: blue
`,
          'bad.tests.yaml',
        ),
      (error: Error) => {
        assert.equal(
          error.message,
          [
            'examples bad.tests.yaml are invalid (4 problems):',
            '  - bad.tests.yaml:5:13: tests[0].colour: is not a known field; expected one of name, identity, target, sql, shell, trace, session, time, expect',
            '  - bad.tests.yaml:3:23: tests[0].identity.kind: must be one of agent, human, service',
            '  - bad.tests.yaml:2:5: tests[0]: needs exactly one of sql or shell: the command to decide',
            '  - bad.tests.yaml:4:23: tests[0].expect.effect: must be one of allow, deny, review',
          ].join('\n'),
        );
        return true;
      },
    );
  });
});
