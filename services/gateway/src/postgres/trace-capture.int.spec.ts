import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type pg from 'pg';
import { startPostgres } from '@tracegate/test-harness';
import { TraceRefusal, type StatementContext, type TraceFeatures, type TraceRegistry, type VerifiedIdentity } from './ports.js';
import { AGENT, MemoryRecorder, RuleJudge, startGatewayFixture, type GatewayFixture } from './testing/gateway-fixture.js';
import { RawClient, sqlstateOf, typesOf } from './testing/raw-client.js';

// Traces attached in the protocol's own idiom: a sqlcommenter comment on the statement, an inline
// URL-encoded trace, or a session default with SET tracegate.trace_id. The target must never see
// any of it (checked on the target side, in pg_stat_activity), and every statement must be linked
// to its own trace, also inside a pipelined extended-protocol batch.

/** Traces by id with their owner; inline ones get ids t-inline-1, 2… */
class TestTraces implements TraceRegistry {
  readonly traces = new Map<string, { owner: string; features: TraceFeatures }>([
    ['t-own-1', { owner: 'id-agent-1', features: { confidence: 0.9, model: 'model-a', tags: ['billing'] } }],
    ['t-own-2', { owner: 'id-agent-1', features: { confidence: 0.4, model: 'model-a', tags: [] } }],
    ['t-foreign', { owner: 'id-someone-else', features: { confidence: 1, model: 'model-b', tags: [] } }],
  ]);
  readonly inline: string[] = [];
  async resolve(traceId: string, identity: VerifiedIdentity): Promise<TraceFeatures> {
    const trace = this.traces.get(traceId);
    if (!trace) throw new TraceRefusal(`trace ${traceId} does not exist; submit it first`);
    if (trace.owner !== identity.id) throw new TraceRefusal(`trace ${traceId} was submitted by another identity; an agent can only attach its own traces`);
    return trace.features;
  }
  async submitInline(traceJson: string): Promise<{ traceId: string; features: TraceFeatures }> {
    const parsed = JSON.parse(traceJson) as { confidence?: number };
    this.inline.push(traceJson);
    const traceId = `t-inline-${this.inline.length}`;
    const features = { confidence: parsed.confidence ?? 0, model: '', tags: [] };
    this.traces.set(traceId, { owner: 'id-agent-1', features });
    return { traceId, features };
  }
}

/** Records what policy was asked, trace features included. */
class SeeingJudge extends RuleJudge {}

describe('reasoning traces attached to statements', () => {
  let target: Awaited<ReturnType<typeof startPostgres>>;
  let gateway: GatewayFixture;
  const recorder = new MemoryRecorder();
  const traces = new TestTraces();
  const judge = new SeeingJudge();
  const clients: pg.Client[] = [];
  const through = async () => {
    const c = await gateway.client();
    clients.push(c);
    return c;
  };
  const recordedFor = (fragment: string) => recorder.statements.filter((s) => s.text.includes(fragment));
  const askedFor = (fragment: string): StatementContext | undefined => judge.seen.find((s) => s.text.includes(fragment));

  before(async () => {
    target = await startPostgres();
    gateway = await startGatewayFixture(target, { recorder, judge, traces });
  });

  after(async () => {
    await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
    await gateway?.close();
    await target?.stop();
  });

  it('takes a trace comment out before the target sees the statement, and links the trace to it', async () => {
    const agent = await through();
    const { rows } = await agent.query("SELECT query AS seen_by_target FROM pg_stat_activity WHERE pid = pg_backend_pid() /*tracegate_trace_id='t-own-1'*/");
    assert.doesNotMatch(rows[0].seen_by_target, /tracegate|t-own-1/);
    const [recorded] = recordedFor('seen_by_target');
    assert.equal(recorded?.traceId, 't-own-1');
    assert.doesNotMatch(recorded!.text, /tracegate/);
    assert.deepEqual(askedFor('seen_by_target')?.trace, { confidence: 0.9, model: 'model-a', tags: ['billing'] });
  });

  it('keeps the other sqlcommenter pairs of the comment for the target', async () => {
    const agent = await through();
    const { rows } = await agent.query("/*traceparent='00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',tracegate_trace_id='t-own-1'*/ SELECT query AS kept FROM pg_stat_activity WHERE pid = pg_backend_pid()");
    assert.match(rows[0].kept, /traceparent='00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01'/);
    assert.doesNotMatch(rows[0].kept, /tracegate/);
  });

  it('leaves a string literal that only looks like a trace comment alone', async () => {
    const agent = await through();
    const { rows } = await agent.query("SELECT '/*tracegate_trace_id=''t-foreign''*/' AS literal");
    assert.equal(rows[0].literal, "/*tracegate_trace_id='t-foreign'*/");
    assert.equal(recordedFor('AS literal')[0]?.traceId, undefined);
  });

  it('links each statement of a multi-statement query to the trace in its own span', async () => {
    const agent = await through();
    await agent.query("SELECT 1 AS first /*tracegate_trace_id='t-own-1'*/; SELECT 2 AS second /*tracegate_trace_id='t-own-2'*/; SELECT 3 AS third");
    assert.equal(recordedFor('AS first')[0]?.traceId, 't-own-1');
    assert.equal(recordedFor('AS second')[0]?.traceId, 't-own-2');
    assert.equal(recordedFor('AS third')[0]?.traceId, undefined);
  });

  it('links each statement of a pipelined extended-protocol batch to its own trace', async () => {
    const client = await RawClient.connectTls(gateway.port);
    try {
      await client.login({ user: AGENT.name, database: 'billing' }, AGENT.key);
      client.send(
        { type: 'parse', statement: '', text: "SELECT $1::int AS piped_a /*tracegate_trace_id='t-own-1'*/", parameterTypes: [] },
        { type: 'bind', portal: '', statement: '', parameterFormats: [], parameters: [Buffer.from('1')], resultFormats: [] },
        { type: 'execute', portal: '', maxRows: 0 },
        { type: 'parse', statement: 's2', text: "/*tracegate_trace_id='t-own-2'*/ SELECT query AS piped_b FROM pg_stat_activity WHERE pid = pg_backend_pid()", parameterTypes: [] },
        { type: 'bind', portal: '', statement: 's2', parameterFormats: [], parameters: [], resultFormats: [] },
        { type: 'execute', portal: '', maxRows: 0 },
        { type: 'sync' },
      );
      const frames = await client.untilReady();
      assert.equal(typesOf(frames), '1 2 D C 1 2 D C Z');
      const lastRow = frames.filter((f) => String.fromCharCode(f.type) === 'D').at(-1)!;
      assert.doesNotMatch(lastRow.body.toString('utf8'), /tracegate/);
      assert.equal(recordedFor('piped_a')[0]?.traceId, 't-own-1');
      assert.equal(recordedFor('piped_b')[0]?.traceId, 't-own-2');
    } finally {
      client.end();
    }
  });

  it('keeps SET tracegate.trace_id as the session default and never forwards it', async () => {
    const agent = await through();
    const set = await agent.query("SET tracegate.trace_id = 't-own-2'");
    assert.equal(set.command, 'SET');
    const { rows } = await agent.query('SELECT query AS with_default FROM pg_stat_activity WHERE pid = pg_backend_pid()');
    assert.doesNotMatch(rows[0].with_default, /tracegate/);
    assert.equal(recordedFor('with_default')[0]?.traceId, 't-own-2');
    // A statement's own comment wins over the default.
    await agent.query("SELECT 1 AS own_wins /*tracegate_trace_id='t-own-1'*/");
    assert.equal(recordedFor('own_wins')[0]?.traceId, 't-own-1');
    // The target never heard of the setting: its log of settings shows nothing.
    const direct = await gateway.direct();
    clients.push(direct);
    const activity = await direct.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE (query ILIKE '%t-own-2%' OR query ILIKE '%tracegate.trace_id%') AND pid <> pg_backend_pid()");
    assert.equal(activity.rows[0].n, 0);
    await agent.query('RESET tracegate.trace_id');
    await agent.query('SELECT 1 AS after_reset');
    assert.equal(recordedFor('after_reset')[0]?.traceId, undefined);
  });

  it('answers SET tracegate.trace_id inside a transaction block with the block\'s status', async () => {
    const client = await RawClient.connectTls(gateway.port);
    try {
      await client.login({ user: AGENT.name, database: 'billing' }, AGENT.key);
      client.send({ type: 'query', text: 'BEGIN' });
      await client.untilReady();
      client.send({ type: 'query', text: "SET tracegate.trace_id = 't-own-1'" });
      const frames = await client.untilReady();
      assert.equal(typesOf(frames), 'C Z');
      assert.equal(frames[1]!.body.toString('latin1'), 'T');
      client.send({ type: 'query', text: 'ROLLBACK' });
      await client.untilReady();
    } finally {
      client.end();
    }
  });

  it('refuses a foreign or unknown trace id with 42501, and the connection stays usable', async () => {
    const agent = await through();
    await assert.rejects(agent.query("SELECT 1 /*tracegate_trace_id='t-foreign'*/"), (error: { code?: string; message: string }) => {
      assert.equal(error.code, '42501');
      assert.match(error.message, /submitted by another identity/);
      return true;
    });
    await assert.rejects(agent.query("SET tracegate.trace_id = 't-nope'"), /t-nope does not exist/);
    assert.deepEqual((await agent.query('SELECT 2 AS still_fine')).rows, [{ still_fine: 2 }]);
  });

  it('stores an inline URL-encoded trace and links it', async () => {
    const agent = await through();
    const trace = JSON.stringify({ agent: { name: 'billing-bot' }, prompt: 'why is invoice 7 late', confidence: 0.85 });
    await agent.query(`SELECT 7 AS inline_linked /*tracegate_trace='${encodeURIComponent(trace)}'*/`);
    assert.deepEqual(traces.inline.at(-1), trace);
    assert.match(recordedFor('inline_linked')[0]?.traceId ?? '', /^t-inline-\d+$/);
    assert.equal(askedFor('inline_linked')?.trace?.confidence, 0.85);
  });

  it('refuses a tracegate comment that is not sqlcommenter pairs', async () => {
    const client = await RawClient.connectTls(gateway.port);
    try {
      await client.login({ user: AGENT.name, database: 'billing' }, AGENT.key);
      client.send({ type: 'query', text: 'SELECT 1 /* tracegate_trace_id: t-own-1 */' });
      const frames = await client.untilReady();
      assert.equal(sqlstateOf(frames.find((f) => String.fromCharCode(f.type) === 'E')!), '42501');
    } finally {
      client.end();
    }
  });
});
