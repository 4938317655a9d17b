import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startPostgres } from '@tracegate/test-harness';
import type { FrontendMessage } from '../protocol/postgres/index.js';
import { BackendType } from './backend-framer.js';
import type { StatementContext, StatementDecision } from './ports.js';
import { AGENT, MemoryRecorder, RuleJudge, startGatewayFixture, type GatewayFixture } from './testing/gateway-fixture.js';
import { RawClient, sqlstateOf, typesOf } from './testing/raw-client.js';

// The gateway records each execution of a prepared statement with the statement's text and the
// decision made for it. That record must name what the target actually runs: a Parse or Close
// the target refused or skipped (after an earlier error in the batch) changes nothing there, so
// it must change nothing in the gateway's view either — or a client could run one statement
// while the audit trail shows another.

const parse = (statement: string, text: string): FrontendMessage => ({ type: 'parse', statement, text, parameterTypes: [] });
const bind = (statement: string, portal = ''): FrontendMessage => ({ type: 'bind', portal, statement, parameterFormats: [], parameters: [], resultFormats: [] });
const execute = (portal = ''): FrontendMessage => ({ type: 'execute', portal, maxRows: 0 });
const sync: FrontendMessage = { type: 'sync' };
/** Fails at once, so the rest of its batch is skipped until Sync. */
const failing: FrontendMessage = { type: 'execute', portal: 'no-such-portal', maxRows: 0 };

/** The test policy, and: executing a statement named like "forbidden…" is refused; texts can be revoked. */
class ExecuteRuleJudge extends RuleJudge {
  readonly revoked = new Set<string>();
  override async decide(statement: StatementContext): Promise<StatementDecision> {
    if (/^EXECUTE "forbidden/.test(statement.text)) return { effect: 'deny', rule: 'no-forbidden', reason: 'forbidden statements may not run', policyVersion: 'v-test', maskingProfile: '' };
    if (this.revoked.has(statement.text)) return { effect: 'deny', rule: 'revoked', reason: 'this statement was revoked', policyVersion: 'v-test-2', maskingProfile: '' };
    return super.decide(statement);
  }
}

describe('prepared statements: the gateway records what the target runs', () => {
  let target: Awaited<ReturnType<typeof startPostgres>>;
  let gateway: GatewayFixture;
  const recorder = new MemoryRecorder();
  const judge = new ExecuteRuleJudge();
  let client: RawClient;

  before(async () => {
    target = await startPostgres();
    gateway = await startGatewayFixture(target, { recorder, judge });
    client = await RawClient.connectTls(gateway.port);
    await client.login({ user: AGENT.name, database: 'billing' }, AGENT.key);
  });

  after(async () => {
    client?.end();
    await client?.closed;
    await gateway?.close();
    await target?.stop();
  });

  /** Runs one batch and returns the text values of the DataRows it produced. */
  const run = async (...messages: FrontendMessage[]) => {
    client.send(...messages);
    const reply = await client.untilReady();
    const values = reply.filter((f) => f.type === BackendType.DataRow).map((f) => f.body.toString('utf8', 6));
    return { reply, values };
  };
  const lastRecordedText = () => recorder.statements.at(-1)?.text;

  it('a second Parse of a name the target refuses (42P05) leaves the first statement in force, and it is recorded as the first', async () => {
    await run(parse('dup', "SELECT 'first-text'"), sync);
    const refused = await run(parse('dup', "SELECT 'second-text'"), sync);
    assert.equal(sqlstateOf(refused.reply[0]!), '42P05', 'the target refused the duplicate name');
    const executed = await run(bind('dup'), execute(), sync);
    assert.deepEqual(executed.values, ['first-text']);
    assert.equal(lastRecordedText(), "SELECT 'first-text'");
  });

  it('a Parse skipped after an error in its batch does not replace the unnamed statement', async () => {
    await run(parse('', "SELECT 'unnamed-first'"), sync);
    const skipped = await run(failing, parse('', "SELECT 'unnamed-skipped'"), sync);
    assert.equal(typesOf(skipped.reply), 'E Z');
    const executed = await run(bind(''), execute(), sync);
    assert.deepEqual(executed.values, ['unnamed-first']);
    assert.equal(lastRecordedText(), "SELECT 'unnamed-first'");
  });

  it('a Close skipped after an error leaves the statement in force, and its executions are still recorded', async () => {
    await run(parse('kept', "SELECT 'kept-text'"), sync);
    await run(failing, { type: 'close', target: 'S', name: 'kept' }, sync);
    const before = recorder.statements.length;
    const executed = await run(bind('kept'), execute(), sync);
    assert.deepEqual(executed.values, ['kept-text']);
    assert.equal(recorder.statements.length, before + 1, 'the execution was recorded');
    assert.equal(lastRecordedText(), "SELECT 'kept-text'");
  });

  it('a pipelined Parse, Bind and Execute in one batch, and a Bind in the next batch before the first is answered, see the new statement', async () => {
    client.send(parse('piped', "SELECT 'piped-old'"), sync);
    client.send(parse('', "SELECT 'never-mind'"), { type: 'close', target: 'S', name: 'piped' }, parse('piped', "SELECT 'piped-new'"), bind('piped'), execute(), sync, bind('piped', 'later'), execute('later'), sync);
    const replies = [...(await client.untilReady()), ...(await client.untilReady()), ...(await client.untilReady())];
    assert.equal(typesOf(replies), '1 Z 1 3 1 2 D C Z 2 D C Z');
    const rows = replies.filter((f) => f.type === BackendType.DataRow).map((f) => f.body.toString('utf8', 6));
    assert.deepEqual(rows, ['piped-new', 'piped-new']);
    assert.deepEqual(recorder.statements.slice(-2).map((s) => [s.text, s.completion?.commandTag]), [
      ["SELECT 'piped-new'", 'SELECT 1'],
      ["SELECT 'piped-new'", 'SELECT 1'],
    ]);
  });

  it('a statement made with SQL PREPARE and bound by name is decided and recorded as the EXECUTE it amounts to', async () => {
    await run({ type: 'query', text: "PREPARE sql_made AS SELECT 'made-in-sql'" });
    const executed = await run(bind('sql_made'), execute(), sync);
    assert.deepEqual(executed.values, ['made-in-sql']);
    assert.equal(lastRecordedText(), 'EXECUTE "sql_made"');
    assert.equal(recorder.statements.at(-1)?.completion?.commandTag, 'SELECT 1');
  });

  it('a refused one fails its Bind where it stands, and nothing of it runs', async () => {
    await run({ type: 'query', text: "PREPARE forbidden_one AS SELECT 'must-not-run'" });
    const refused = await run(bind('forbidden_one'), execute(), sync);
    // The Bind takes (to the gateway's denial statement); executing it raises the policy's 42501.
    assert.equal(typesOf(refused.reply), '2 E Z');
    assert.equal(sqlstateOf(refused.reply[1]!), '42501');
    assert.match(refused.reply[1]!.body.toString(), /forbidden statements may not run/);
    assert.deepEqual(refused.values, []);
    assert.equal(recorder.statements.at(-1)?.effect, 'deny');
    const works = await run({ type: 'query', text: 'SELECT 1' });
    assert.equal(typesOf(works.reply), 'T D C Z');
  });

  it('a prepared statement is decided again at each Bind: a policy change reaches it, and its reversal too', async () => {
    const text = "SELECT 'revocable-text'";
    await run(parse('revocable', text), sync);
    assert.deepEqual((await run(bind('revocable'), execute(), sync)).values, ['revocable-text']);
    judge.revoked.add(text);
    const refused = await run(bind('revocable'), execute(), sync);
    assert.equal(typesOf(refused.reply), '2 E Z');
    assert.equal(sqlstateOf(refused.reply[1]!), '42501');
    assert.match(refused.reply[1]!.body.toString(), /this statement was revoked/);
    assert.deepEqual([recorder.statements.at(-1)?.text, recorder.statements.at(-1)?.effect], [text, 'deny']);
    judge.revoked.delete(text);
    assert.deepEqual((await run(bind('revocable'), execute(), sync)).values, ['revocable-text'], 'the statement on the target was never replaced');
  });

  it('asks the policy once for a Parse and Bind in one batch, and again for each later Bind', async () => {
    const text = "SELECT 'decided-how-often'";
    const asked = () => judge.seen.filter((s) => s.text === text).length;
    await run(parse('', text), bind(''), execute(), sync);
    assert.equal(asked(), 1);
    await run(bind(''), execute(), sync);
    assert.equal(asked(), 2);
  });
});
