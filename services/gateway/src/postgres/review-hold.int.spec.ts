import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type pg from 'pg';
import { pollUntil, startPostgres } from '@tracegate/test-harness';
import type { ReviewDesk, ReviewOutcome, ReviewRequest, StatementContext, StatementDecision, StatementJudge } from './ports.js';
import { MemoryRecorder, startGatewayFixture, type GatewayFixture } from './testing/gateway-fixture.js';

// A statement whose effect is review is held inside the live connection: the client hears the
// request id in a NoticeResponse and then nothing until reviewers decide; other sessions carry on.
// The approvals service itself is exercised end to end in tests/; here the desk is in-process so
// each outcome can be chosen exactly when the test wants it.

/** UPDATEs need one reviewer in 'dba'; everything else is allowed. */
class ReviewUpdates implements StatementJudge {
  async decide(statement: StatementContext): Promise<StatementDecision> {
    if (/^\s*update\b/i.test(statement.text)) {
      return { effect: 'review', rule: 'agent-writes-reviewed', reason: 'agent writes need a reviewer', policyVersion: 'v1', maskingProfile: '', review: { reviewerGroup: 'dba', quorum: 1, timeoutSeconds: 60 } };
    }
    return { effect: 'allow', rule: 'reads', reason: '', policyVersion: 'v1', maskingProfile: '' };
  }
}

interface Held {
  readonly id: string;
  readonly request: ReviewRequest;
  readonly signal: AbortSignal;
  decide(outcome: { state: ReviewOutcome['state']; approvers?: string[]; reason?: string }): void;
}

class TestDesk implements ReviewDesk {
  readonly held: Held[] = [];
  async hold(request: ReviewRequest, signal: AbortSignal, onOpened: (requestId: string) => void): Promise<ReviewOutcome> {
    const id = `req-${this.held.length + 1}`;
    onOpened(id);
    return new Promise((resolve) => this.held.push({ id, request, signal, decide: (outcome) => resolve({ reason: '', approvers: [], ...outcome, requestId: id } as ReviewOutcome) }));
  }
  async next(count: number): Promise<Held> {
    await pollUntil(() => this.held.length >= count, { timeoutMs: 10_000, description: `approval request ${count}` });
    return this.held[count - 1]!;
  }
}

describe('statements held for review', () => {
  let target: Awaited<ReturnType<typeof startPostgres>>;
  let gateway: GatewayFixture;
  const recorder = new MemoryRecorder();
  const desk = new TestDesk();
  const clients: pg.Client[] = [];

  const through = async () => {
    const c = await gateway.client();
    clients.push(c);
    return c;
  };

  before(async () => {
    target = await startPostgres();
    gateway = await startGatewayFixture(target, { recorder, judge: new ReviewUpdates(), reviews: desk });
    const setup = await gateway.direct();
    await setup.query('CREATE TABLE accounts (id int PRIMARY KEY, balance int)');
    await setup.query('INSERT INTO accounts VALUES (1, 100), (2, 200)');
    await setup.end();
  });

  after(async () => {
    await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
    await gateway?.close();
    await target?.stop();
  });

  it('holds the statement, tells the client the request id, lets other sessions run, and runs it once approved', async () => {
    const agent = await through();
    const notices: string[] = [];
    agent.on('notice', (n) => notices.push(n.message ?? ''));
    const update = agent.query('UPDATE accounts SET balance = balance + 1 WHERE id = 1 RETURNING balance');
    const held = await desk.next(1);
    assert.equal(held.request.maskedCommand, 'UPDATE accounts SET balance = balance + 1 WHERE id = 1 RETURNING balance');
    assert.equal(held.request.terms.reviewerGroup, 'dba');
    assert.equal(held.request.identity.name, 'agent-1');
    await pollUntil(() => notices.length > 0, { timeoutMs: 5000, description: 'the hold notice' });
    assert.match(notices[0]!, /held for approval \(request req-1\)/);

    // Another session is not held up.
    const other = await through();
    assert.deepEqual((await other.query('SELECT balance FROM accounts WHERE id = 2')).rows, [{ balance: 200 }]);
    // Nothing ran yet on the target.
    const direct = await gateway.direct();
    clients.push(direct);
    assert.deepEqual((await direct.query('SELECT balance FROM accounts WHERE id = 1')).rows, [{ balance: 100 }]);

    held.decide({ state: 'approved', approvers: ['dba-1'] });
    assert.deepEqual((await update).rows, [{ balance: 101 }]);
    const recorded = recorder.statements.find((s) => s.text.startsWith('UPDATE accounts SET balance = balance + 1'));
    assert.equal(recorded?.effect, 'allow');
  });

  it('answers a denial with 42501 and the reviewer\'s reason, and the connection stays usable', async () => {
    const agent = await through();
    const update = agent.query('UPDATE accounts SET balance = 0 WHERE id = 2');
    const held = await desk.next(2);
    held.decide({ state: 'denied', reason: 'not during the freeze' });
    await assert.rejects(update, (error: { code?: string; message: string }) => {
      assert.equal(error.code, '42501');
      assert.match(error.message, /approval request req-2 was denied: not during the freeze/);
      return true;
    });
    assert.deepEqual((await agent.query('SELECT balance FROM accounts WHERE id = 2')).rows, [{ balance: 200 }]);
  });

  it('aborts the transaction block a denied statement stood in, as an error there would', async () => {
    const agent = await through();
    await agent.query('BEGIN');
    await agent.query('INSERT INTO accounts VALUES (3, 300)');
    const update = agent.query('UPDATE accounts SET balance = 1 WHERE id = 3');
    const held = await desk.next(3);
    held.decide({ state: 'expired', reason: '' });
    await assert.rejects(update, /expired before enough reviewers in 'dba' approved it/);
    await assert.rejects(agent.query('SELECT 1'), (error: { code?: string }) => error.code === '25P02');
    await agent.query('ROLLBACK');
    assert.deepEqual((await agent.query('SELECT count(*)::int AS n FROM accounts WHERE id = 3')).rows, [{ n: 0 }]);
  });

  it('withdraws the request when the client disconnects while held', async () => {
    const agent = await gateway.client();
    agent.on('error', () => undefined); // the connection is cut on purpose
    const update = agent.query('UPDATE accounts SET balance = 5 WHERE id = 1').catch((error: Error) => error);
    const held = await desk.next(4);
    assert.equal(held.signal.aborted, false);
    (agent as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy();
    await pollUntil(() => held.signal.aborted, { timeoutMs: 5000, description: 'the withdrawal' });
    held.decide({ state: 'withdrawn', reason: 'client went away' });
    assert.ok((await update) instanceof Error);
    const direct = await gateway.direct();
    clients.push(direct);
    assert.deepEqual((await direct.query('SELECT balance FROM accounts WHERE id = 1')).rows, [{ balance: 101 }]);
  });
});
