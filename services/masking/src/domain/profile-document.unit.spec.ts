import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MaskingError, MaskingErrorCode } from './masking-error.js';
import { parseProfileDocument } from './profile-document.js';

const GOOD = `name: billing
version: "3"
rules:
  - { name: cards, column: card_number, strategy: partial, keep_last: 4 }
  - name: contact
    json_path: $..email
    strategy: hash
  - { name: free-text, detector: "*", strategy: redact }
`;

function problems(text: string): string {
  try {
    parseProfileDocument(text, 'profiles/billing.yaml');
  } catch (error) {
    assert.ok(error instanceof MaskingError);
    assert.equal(error.code, MaskingErrorCode.InvalidProfile);
    return error.message;
  }
  return assert.fail('the document was accepted');
}

describe('masking profile documents', () => {
  it('reads a profile into the engine spec', () => {
    const { spec, digest } = parseProfileDocument(GOOD, 'profiles/billing.yaml');
    assert.deepEqual(spec, {
      name: 'billing',
      version: '3',
      rules: [
        { name: 'cards', column: 'card_number', strategy: 'partial', keepLast: 4 },
        { name: 'contact', jsonPath: '$..email', strategy: 'hash' },
        { name: 'free-text', detector: '*', strategy: 'redact' },
      ],
    });
    assert.match(digest, /^sha256:[0-9a-f]{64}$/);
  });

  it('versions a profile by its content when it names no version', () => {
    const a = parseProfileDocument(GOOD.replace('version: "3"\n', ''), 'x.yaml');
    const b = parseProfileDocument(GOOD.replace('version: "3"\n', '').replace('keep_last: 4', 'keep_last: 2'), 'x.yaml');
    assert.match(a.spec.version, /^sha256:[0-9a-f]{16}$/);
    assert.notEqual(a.spec.version, b.spec.version);
  });

  it('names file, line and column of a YAML syntax error', () => {
    assert.match(problems('name: billing\nrules: []\nname: other\n'), /profiles\/billing\.yaml:3:1: Map keys must be unique/);
    assert.match(problems('name: billing\nrules:\n  - { name: x, column: [a\n'), /profiles\/billing\.yaml:4:1: Flow sequence .* must be sufficiently indented and end with a \]/);
  });

  it('names every bad field at its line: unknown keys, bad values, engine checks', () => {
    const message = problems(`name: billing
rulez: []
rules:
  - { name: a, column: x, strategy: partial }
  - name: b
    colum: y
    strategy: redact
  - { name: c, detector: nope, strategy: redact, keep_last: -1 }
`);
    assert.match(message, /billing\.yaml:2:1: unknown key 'rulez'/);
    assert.match(message, /billing\.yaml:6:5: unknown rule key 'colum'/);
    assert.match(message, /billing\.yaml:8:\d+: keep_last must be a whole number/);
    assert.doesNotMatch(message, /undefined/);
  });

  it('runs the engine checks once the document is well formed, placing them at their rule', () => {
    const message = problems(`name: billing
rules:
  - { name: a, column: x, strategy: partial }
  - { name: b, detector: nope, strategy: redact }
`);
    assert.match(message, /billing\.yaml:3:5: rule 1 \('a'\): the partial strategy needs keep_last/);
    assert.match(message, /billing\.yaml:4:5: rule 2 \('b'\): detector 'nope' is unknown/);
  });

  it('refuses a document without a name', () => {
    assert.match(problems('rules: []\n'), /has no name/);
  });
});
