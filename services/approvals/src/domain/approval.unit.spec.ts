import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ApprovalError, ApprovalErrorCode } from '../errors.js';
import { approvalEventOf, cloudEventTypeOf, decide, evolveAll, type Approval, type ApprovalCommand, type ApprovalEvent, type ApprovalTerms, type Reviewer } from './approval.js';

const T0 = new Date('2026-11-22T06:00:00.000Z');
const at = (seconds: number) => new Date(T0.getTime() + seconds * 1000);

const terms = (overrides: Partial<ApprovalTerms> = {}): ApprovalTerms => ({
  id: 'req-1',
  requester: { id: 'key-ci', name: 'ci-agent' },
  target: 'billing',
  maskedCommand: 'DELETE FROM invoices WHERE id = $1',
  traceId: 'trace-7',
  sessionId: 'session-3',
  rule: 'agents-writes-need-review',
  reviewerGroup: 'dba',
  quorum: 1,
  requestedAt: T0,
  expiresAt: at(300),
  ...overrides,
});

const alice: Reviewer = { id: 'key-alice', name: 'alice', kind: 'human', groups: ['dba', 'sre'] };
const bob: Reviewer = { id: 'key-bob', name: 'bob', kind: 'human', groups: ['dba'] };
const carol: Reviewer = { id: 'key-carol', name: 'carol', kind: 'human', groups: ['sre'] };

/** given(events) → when(command) → then events / state, or the refusal. */
function given(...events: ApprovalEvent[]) {
  const state = evolveAll(events);
  return {
    when(command: ApprovalCommand) {
      const run = () => decide(command, state);
      return {
        thenEvents(): ApprovalEvent[] {
          return run();
        },
        thenState(): Approval {
          const after = evolveAll(run(), state);
          assert.notEqual(after.status, 'none');
          return after as Approval;
        },
        thenRefused(code: ApprovalErrorCode, message?: RegExp): void {
          assert.throws(run, (error: unknown) => {
            assert.ok(error instanceof ApprovalError, `expected an ApprovalError, got ${String(error)}`);
            assert.equal(error.code, code, error.message);
            if (message) assert.match(error.message, message);
            return true;
          });
        },
      };
    },
  };
}

const requested = (overrides: Partial<ApprovalTerms> = {}) => decide({ kind: 'request', terms: terms(overrides) }, { status: 'none' })[0]!;
const approvedBy = (state: ApprovalEvent[], reviewer: Reviewer, seconds = 10) => decide({ kind: 'approve', reviewer, at: at(seconds) }, evolveAll(state))[0]!;

describe('approval decider', () => {
  it('given nothing, when a request is made, then it is pending with its terms and no approvers', () => {
    const state = given().when({ kind: 'request', terms: terms() }).thenState();
    assert.equal(state.status, 'pending');
    assert.deepEqual(state.requester, { id: 'key-ci', name: 'ci-agent' });
    assert.equal(state.maskedCommand, 'DELETE FROM invoices WHERE id = $1');
    assert.deepEqual(state.expiresAt, at(300));
    assert.deepEqual(state.approvers, []);
  });

  it('given nothing, when a request has no reviewer group, a quorum of 0 or no time, then it is refused naming the field', () => {
    given().when({ kind: 'request', terms: terms({ reviewerGroup: '' }) }).thenRefused(ApprovalErrorCode.InvalidArgument, /^reviewer_group is required/);
    given().when({ kind: 'request', terms: terms({ quorum: 0 }) }).thenRefused(ApprovalErrorCode.InvalidArgument, /^quorum 0 is not a number of approvers from 1 to 10/);
    given().when({ kind: 'request', terms: terms({ expiresAt: T0 }) }).thenRefused(ApprovalErrorCode.InvalidArgument, /^timeout_seconds/);
  });

  it('given a request with a quorum of two, when one reviewer approves, then it stays pending; when a second does, then it is approved by both', () => {
    const r = requested({ quorum: 2 });
    const first = given(r).when({ kind: 'approve', reviewer: alice, at: at(10) });
    const [a1] = first.thenEvents();
    assert.deepEqual(a1, { type: 'approved', data: { id: 'req-1', reviewer: { id: 'key-alice', name: 'alice' }, at: at(10).toISOString(), approvals: 1, quorum: 2 } });
    assert.equal(first.thenState().status, 'pending');

    const second = given(r, a1!).when({ kind: 'approve', reviewer: bob, at: at(20) }).thenState();
    assert.equal(second.status, 'approved');
    assert.deepEqual(second.approvers.map((a) => a.name), ['alice', 'bob']);
    assert.deepEqual(second.finishedAt, at(20));
  });

  it('given one approval of a quorum of two, when the same reviewer approves again, then it is refused: each reviewer counts once', () => {
    const r = requested({ quorum: 2 });
    given(r, approvedBy([r], alice)).when({ kind: 'approve', reviewer: alice, at: at(30) }).thenRefused(
      ApprovalErrorCode.AlreadyApproved,
      /you already approved request req-1; each reviewer counts once, so it needs 1 more approval from other members of 'dba'/,
    );
  });

  it('given a request, when its requester approves it (even in the reviewer group), then it is refused', () => {
    const selfReviewer: Reviewer = { id: 'key-ci', name: 'ci-agent', kind: 'human', groups: ['dba'] };
    given(requested()).when({ kind: 'approve', reviewer: selfReviewer, at: at(5) }).thenRefused(
      ApprovalErrorCode.SelfDecision,
      /^you requested this change; another member of 'dba' must approve it$/,
    );
    given(requested()).when({ kind: 'deny', reviewer: selfReviewer, reason: 'no', at: at(5) }).thenRefused(ApprovalErrorCode.SelfDecision);
  });

  it('given a request for dba, when a reviewer outside dba or an agent decides, then it is refused', () => {
    given(requested()).when({ kind: 'approve', reviewer: carol, at: at(5) }).thenRefused(
      ApprovalErrorCode.NotInReviewerGroup,
      /'carol' is not in the reviewer group 'dba' of request req-1; ask a member of 'dba' to approve it/,
    );
    const agent: Reviewer = { id: 'key-bot', name: 'bot', kind: 'agent', groups: ['dba'] };
    given(requested()).when({ kind: 'approve', reviewer: agent, at: at(5) }).thenRefused(ApprovalErrorCode.NotAReviewer, /'bot' is an agent identity; only people/);
  });

  it('given a request, when a reviewer denies it with a reason, then it is denied with that reason and who denied it; without a reason it is refused', () => {
    const state = given(requested()).when({ kind: 'deny', reviewer: bob, reason: '  not during month-end close ', at: at(40) }).thenState();
    assert.equal(state.status, 'denied');
    assert.equal(state.reason, 'not during month-end close');
    assert.deepEqual(state.decidedBy, { id: 'key-bob', name: 'bob' });
    assert.deepEqual(state.finishedAt, at(40));
    given(requested()).when({ kind: 'deny', reviewer: bob, reason: ' ', at: at(40) }).thenRefused(ApprovalErrorCode.InvalidArgument, /^reason is required to deny request req-1/);
  });

  it('given one approval of two, when the deadline passes, then it expires saying how many approvals it got; before the deadline nothing happens', () => {
    const r = requested({ quorum: 2 });
    const a = approvedBy([r], alice);
    assert.deepEqual(given(r, a).when({ kind: 'expire', at: at(299) }).thenEvents(), []);
    const state = given(r, a).when({ kind: 'expire', at: at(300) }).thenState();
    assert.equal(state.status, 'expired');
    assert.equal(state.reason, `no decision in time: 1 of 2 required approvals from 'dba' before the request expired at ${at(300).toISOString()}`);
  });

  it('given a request, when its requester withdraws it, then it is withdrawn; a second withdraw is a no-op; someone else cannot withdraw it', () => {
    const w = given(requested()).when({ kind: 'withdraw', requesterId: 'key-ci', reason: 'the client disconnected', at: at(3) });
    const [withdrawn] = w.thenEvents();
    assert.equal(w.thenState().status, 'withdrawn');
    assert.equal(w.thenState().reason, 'the client disconnected');
    assert.deepEqual(given(requested(), withdrawn!).when({ kind: 'withdraw', requesterId: 'key-ci', reason: '', at: at(4) }).thenEvents(), []);
    given(requested()).when({ kind: 'withdraw', requesterId: 'key-alice', reason: '', at: at(3) }).thenRefused(ApprovalErrorCode.NotTheRequester, /only the requester \(ci-agent\)/);
  });

  it('given a final request, when anyone decides, then it is refused as already final, and expiry does nothing', () => {
    const r = requested();
    const denied = decide({ kind: 'deny', reviewer: bob, reason: 'too risky', at: at(9) }, evolveAll([r]))[0]!;
    given(r, denied).when({ kind: 'approve', reviewer: alice, at: at(10) }).thenRefused(
      ApprovalErrorCode.AlreadyFinal,
      new RegExp(`^request req-1 was already denied at ${at(9).toISOString()} \\(too risky\\); there is nothing left to approve$`),
    );
    given(r, denied).when({ kind: 'deny', reviewer: alice, reason: 'me too', at: at(10) }).thenRefused(ApprovalErrorCode.AlreadyFinal);
    given(r, denied).when({ kind: 'withdraw', requesterId: 'key-ci', reason: '', at: at(10) }).thenRefused(ApprovalErrorCode.AlreadyFinal);
    assert.deepEqual(given(r, denied).when({ kind: 'expire', at: at(1000) }).thenEvents(), []);
    const approved = approvedBy([r], alice);
    given(r, approved).when({ kind: 'approve', reviewer: bob, at: at(11) }).thenRefused(ApprovalErrorCode.AlreadyFinal, /already approved/);
  });

  it('given nothing, when anyone decides, then the request is not found', () => {
    given().when({ kind: 'approve', reviewer: alice, at: at(1) }).thenRefused(ApprovalErrorCode.RequestNotFound);
  });

  it('events round-trip through their CloudEvents type and JSON, so replaying the log rebuilds the same request', () => {
    const r = requested({ quorum: 2 });
    const events = [r, approvedBy([r], alice), approvedBy([r, approvedBy([r], alice)], bob, 20)];
    const viaLog = events.map((e) => approvalEventOf({ type: cloudEventTypeOf(e), data: JSON.parse(JSON.stringify(e.data)) })!);
    assert.deepEqual(evolveAll(viaLog), evolveAll(events));
    assert.equal(cloudEventTypeOf(r), 'dev.tracegate.approval.requested.v1');
    assert.equal(approvalEventOf({ type: 'dev.tracegate.approval.reopened.v1', data: {} }), undefined);
  });
});
