import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { policyChanges, policyDefinition } from './policy-changes.js';
import { parsePolicyDocument } from './policy-document.js';

const document = (defaults: string, rules: string) =>
  parsePolicyDocument(`version: 1\ndefault: { ${defaults} }\nrules:\n${rules}`, 'p.yaml').document;

const READ = `  - name: agents-read\n    priority: 10\n    match: { identity: { kind: agent }, statement: { kind: select } }\n    effect: allow\n`;
const WRITE = `  - name: agents-write\n    priority: 5\n    match: { identity: { kind: agent } }\n    effect: review\n    review: { group: dba }\n`;

describe('policy changes', () => {
  it('the first version adds every rule and changes no defaults', () => {
    assert.deepEqual(policyChanges(undefined, document('agent: deny, human: allow, service: deny', READ)), {
      addedRules: ['agents-read'],
      removedRules: [],
      changedRules: [],
      defaultsChanged: false,
    });
  });

  it('compares rules by name, a when included, and the defaults', () => {
    const before = policyDefinition(document('agent: deny, human: allow, service: deny', READ + WRITE));
    const after = document('agent: deny, human: deny, service: deny', READ.replace('priority: 10', 'priority: 10\n    when: trace.confidence > 0.5'));
    assert.deepEqual(policyChanges(before, after), { addedRules: [], removedRules: ['agents-write'], changedRules: ['agents-read'], defaultsChanged: true });
  });

  it('layout and comments change nothing', () => {
    const before = policyDefinition(document('agent: deny, human: allow, service: deny', READ));
    assert.deepEqual(policyChanges(before, document('agent: deny,   human: allow,  service: deny', `  # the same rule, commented\n${READ}`)), {
      addedRules: [],
      removedRules: [],
      changedRules: [],
      defaultsChanged: false,
    });
  });
});
