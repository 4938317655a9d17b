import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { blankTraceComments, namesTraceSetting, sessionTraceSetting } from './trace-comments.js';
import { loadSqlParser } from './statements.js';

describe('trace comments', () => {
  before(() => loadSqlParser());

  it('blanks a comment holding only tracegate pairs with spaces of the same byte length', () => {
    const query = "SELECT 'é' /*tracegate_trace_id='t-1'*/, 2";
    const blanked = blankTraceComments(query);
    assert.equal(Buffer.byteLength(blanked.text), Buffer.byteLength(query));
    assert.equal(blanked.text.replace(/\s+/g, ' '), "SELECT 'é' , 2");
    assert.deepEqual(blanked.comments, [{ offset: Buffer.byteLength("SELECT 'é' "), attachment: { traceId: 't-1' } }]);
  });

  it('decodes URL-encoded values, inline traces included', () => {
    const trace = JSON.stringify({ prompt: "it's late, isn't it?", confidence: 0.5 });
    // sqlcommenter: URL-encode, and a quote (which encodeURIComponent leaves) as %27 or \'.
    const blanked = blankTraceComments(`/*tracegate_trace='${encodeURIComponent(trace).replaceAll("'", '%27')}'*/ SELECT 1`);
    assert.equal(blanked.comments[0]?.attachment.inlineTrace, trace);
    const escaped = blankTraceComments(`SELECT 1 /*tracegate_trace='${encodeURIComponent(trace).replaceAll("'", "\\'")}'*/`);
    assert.equal(escaped.comments[0]?.attachment.inlineTrace, trace);
  });

  it('keeps other sqlcommenter pairs, re-encoded, in place', () => {
    const blanked = blankTraceComments("SELECT 1 /*action='%2Fparam*d',tracegate_trace_id='t-2',framework='spring'*/");
    assert.match(blanked.text, /\/\*action='%2Fparam\*d',framework='spring'\*\//);
    assert.equal(blanked.comments[0]?.attachment.traceId, 't-2');
  });

  it('never touches string literals, dollar-quoted bodies or line comments that only look like trace comments', () => {
    for (const query of ["SELECT '/*tracegate_trace_id=''x''*/'", "SELECT $$ /*tracegate_trace_id='x'*/ $$", "SELECT 1 -- tracegate_trace_id='x'"]) {
      const blanked = blankTraceComments(query);
      assert.equal(blanked.text, query);
      assert.deepEqual(blanked.comments, []);
    }
  });

  it('names a malformed tracegate comment and an unknown tracegate key', () => {
    assert.match(blankTraceComments('SELECT 1 /* tracegate_trace_id: x */').problem ?? '', /not sqlcommenter pairs/);
    assert.match(blankTraceComments("SELECT 1 /*tracegate_trace_idx='x'*/").problem ?? '', /'tracegate_trace_idx' is not a tracegate comment key/);
    assert.match(blankTraceComments("SELECT 1 /*tracegate_trace='%E0%A4%A'*/").problem ?? '', /not sqlcommenter pairs/);
  });

  it('reads the forms of SET and RESET tracegate.trace_id, and nothing else', () => {
    assert.deepEqual(sessionTraceSetting("SET tracegate.trace_id = 't-9'"), { traceId: 't-9' });
    assert.deepEqual(sessionTraceSetting("set session TRACEGATE.TRACE_ID to 'it''s'"), { traceId: "it's" });
    assert.deepEqual(sessionTraceSetting('SET "tracegate"."trace_id" TO t-10;'), { traceId: 't-10' });
    assert.deepEqual(sessionTraceSetting('RESET tracegate.trace_id'), { traceId: '' });
    assert.deepEqual(sessionTraceSetting('SET tracegate.trace_id TO DEFAULT'), { traceId: '' });
    assert.equal(sessionTraceSetting("SET LOCAL tracegate.trace_id = 'x'"), undefined);
    assert.equal(sessionTraceSetting("SET search_path = 'x'"), undefined);
    assert.equal(namesTraceSetting("SET LOCAL tracegate.trace_id = 'x'"), true);
    assert.equal(namesTraceSetting("SELECT set_config('tracegate.trace_id', 'x', false)"), true);
    assert.equal(namesTraceSetting('SELECT 1'), false);
  });
});
