import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { auditV1 } from '@tracegate/contracts';
import { AuditError, AuditErrorCode } from '../../errors.js';
import { checkTraceSize, featuresOf, freeTextOf, readSubmittedTrace, withFreeText } from './trace-document.js';

const LIMIT = 4096;

function refusal(code: AuditErrorCode, pattern: RegExp) {
  return (error: unknown) => {
    assert.ok(error instanceof AuditError, String(error));
    assert.equal(error.code, code);
    assert.match(error.message, pattern);
    return true;
  };
}

const sample = {
  agent: { name: 'billing-bot', model: 'gpt-5', version: '1.2' },
  prompt: 'close the November invoices',
  steps: [{ thought: 'find open invoices', tool: 'psql', input: 'SELECT …', outputSummary: '3 rows' }],
  confidence: 0.82,
  sources: ['https://wiki.internal/invoicing'],
  tags: ['finance'],
};

describe('trace documents', () => {
  it('takes a trace as JSON (inline) or as a message, and measures both the same way', () => {
    const json = JSON.stringify(sample);
    const fromJson = readSubmittedTrace({ trace: undefined, traceJson: json }, LIMIT);
    assert.equal(fromJson.sizeBytes, Buffer.byteLength(json));
    assert.equal(fromJson.trace.agent?.name, 'billing-bot');
    assert.equal(fromJson.trace.steps[0]?.outputSummary, '3 rows');
    const fromMessage = readSubmittedTrace({ trace: fromJson.trace, traceJson: '' }, LIMIT);
    assert.deepEqual(fromMessage.trace, fromJson.trace);
    // The same trace is the same size whichever way it came (its JSON form), give or take key order.
    assert.equal(fromMessage.sizeBytes, Buffer.byteLength(JSON.stringify(auditV1.Trace.toJSON(fromJson.trace))));
    assert.deepEqual(featuresOf(fromJson.trace), { present: true, confidence: 0.82, model: 'gpt-5', tags: ['finance'] });
  });

  it('refuses a trace one byte over the limit with RESOURCE_EXHAUSTED naming the size and the setting, and takes one at the limit', () => {
    assert.doesNotThrow(() => checkTraceSize(LIMIT, LIMIT));
    assert.throws(() => checkTraceSize(LIMIT + 1, LIMIT), refusal(AuditErrorCode.TooLarge, /4097 bytes.*4\.0 KiB.*TRACEGATE_TRACE_MAX_BYTES/));
    const big = JSON.stringify({ ...sample, prompt: 'x'.repeat(LIMIT) });
    assert.throws(() => readSubmittedTrace({ trace: undefined, traceJson: big }, LIMIT), refusal(AuditErrorCode.TooLarge, /more than the 4\.0 KiB/));
    const message = readSubmittedTrace({ trace: undefined, traceJson: JSON.stringify(sample) }, LIMIT).trace;
    assert.throws(() => readSubmittedTrace({ trace: { ...message, prompt: 'y'.repeat(LIMIT) }, traceJson: '' }, LIMIT), refusal(AuditErrorCode.TooLarge, /TRACEGATE_TRACE_MAX_BYTES/));
  });

  it('says what is wrong with a malformed trace', () => {
    const cases: [string, RegExp][] = [
      ['not json', /not valid JSON/],
      ['[1,2]', /must be a JSON object/],
      [JSON.stringify({ ...sample, confidance: 0.5 }), /field 'confidance' is unknown; a trace has agent, prompt, steps, confidence, sources, tags, traceparent$/],
      [JSON.stringify({ ...sample, confidence: 1.5 }), /confidence 1\.5 is not between 0 and 1/],
      [JSON.stringify({ ...sample, confidence: '0.5' }), /confidence must be a number/],
      [JSON.stringify({ ...sample, id: 't-mine' }), /'id' is set by the service/],
      [JSON.stringify({ ...sample, identityId: 'key-other' }), /'identityId' is set by the service/],
      [JSON.stringify({ ...sample, steps: [{ thought: 'a', result: 'b' }] }), /steps\[0\] field 'result' is unknown/],
      [JSON.stringify({ ...sample, agent: { name: 'a', temperature: 1 } }), /agent field 'temperature' is unknown/],
      [JSON.stringify({ ...sample, tags: ['a', 1] }), /tags must be an array of strings/],
      [JSON.stringify({ ...sample, traceparent: 'abc' }), /not a W3C traceparent/],
    ];
    for (const [json, pattern] of cases) assert.throws(() => readSubmittedTrace({ trace: undefined, traceJson: json }, LIMIT), refusal(AuditErrorCode.InvalidArgument, pattern), json);
    assert.throws(() => readSubmittedTrace({ trace: undefined, traceJson: '' }, LIMIT), refusal(AuditErrorCode.InvalidArgument, /carries no trace/));
    const message = readSubmittedTrace({ trace: undefined, traceJson: JSON.stringify(sample) }, LIMIT).trace;
    assert.throws(() => readSubmittedTrace({ trace: message, traceJson: '{}' }, LIMIT), refusal(AuditErrorCode.InvalidArgument, /either trace or trace_json, not both/));
    assert.throws(() => readSubmittedTrace({ trace: { ...message, identityName: 'someone' }, traceJson: '' }, LIMIT), refusal(AuditErrorCode.InvalidArgument, /identityName is set by the service/));
  });

  it('lists every free-text field for masking and puts masked text back in the same places', () => {
    const trace = readSubmittedTrace({ trace: undefined, traceJson: JSON.stringify({ ...sample, steps: [sample.steps[0], { thought: 't2', tool: 'http', input: 'i2', outputSummary: 'o2' }] }) }, LIMIT).trace;
    const texts = freeTextOf(trace);
    assert.deepEqual(texts, ['close the November invoices', 'find open invoices', 'SELECT …', '3 rows', 't2', 'i2', 'o2', 'https://wiki.internal/invoicing']);
    const masked = withFreeText(trace, texts.map((t) => `<${t}>`));
    assert.equal(masked.prompt, '<close the November invoices>');
    assert.deepEqual(masked.steps.map((s) => [s.thought, s.tool, s.input, s.outputSummary]), [['<find open invoices>', 'psql', '<SELECT …>', '<3 rows>'], ['<t2>', 'http', '<i2>', '<o2>']]);
    assert.deepEqual(masked.sources, ['<https://wiki.internal/invoicing>']);
    assert.equal(masked.agent?.name, 'billing-bot');
    assert.throws(() => withFreeText(trace, texts.slice(1)), /expected 8 texts/);
  });
});
