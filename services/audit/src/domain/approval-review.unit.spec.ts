import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { GENESIS, headOf, sealEvent, type ChainHead, type CloudEvent } from '@tracegate/events';
import { evolveReview, type ApprovalReview } from './approval-review.js';

function chain(...steps: [string, Record<string, unknown>][]): CloudEvent[] {
  let head: ChainHead = GENESIS;
  return steps.map(([event, data]) => {
    const sealed = sealEvent({ type: `dev.tracegate.approval.${event}.v1`, subject: 'req-1', source: '/tracegate/approvals', data, time: new Date('2026-11-22T06:00:00Z') }, head);
    head = headOf(sealed);
    return sealed;
  });
}

const fold = (events: readonly CloudEvent[], start?: ApprovalReview) => events.reduce<ApprovalReview | undefined>(evolveReview, start);
const requested: [string, Record<string, unknown>] = ['requested', { id: 'req-1', requester: { id: 'k', name: 'ci-agent' }, sessionId: 's1', rule: 'writes', reviewerGroup: 'dba', quorum: 2 }];

describe('approval review: evolveReview', () => {
  it('given a request, when reviewers approve up to the quorum, then it is approved by them in order', () => {
    const events = chain(requested, ['approved', { reviewer: { name: 'alice' }, at: '2026-11-22T06:01:00Z', quorum: 2 }], ['approved', { reviewer: { name: 'bob' }, at: '2026-11-22T06:02:00Z', quorum: 2 }]);
    const half = fold(events.slice(0, 2))!;
    assert.deepEqual([half.state, half.approvers, half.finishedAt], ['pending', ['alice'], null]);
    const review = fold(events)!;
    assert.deepEqual([review.state, review.approvers, review.requester, review.sessionId, review.finishedAt?.toISOString()], ['approved', ['alice', 'bob'], 'ci-agent', 's1', '2026-11-22T06:02:00.000Z']);
  });

  it('given a request, when a reviewer denies it, then it is denied by them with the reason', () => {
    const review = fold(chain(requested, ['denied', { reviewer: { name: 'carol' }, reason: 'not during the freeze', at: '2026-11-22T06:01:00Z' }]))!;
    assert.deepEqual([review.state, review.decidedBy, review.reason], ['denied', 'carol', 'not during the freeze']);
  });

  it('applying an event again changes nothing, and an event of another aggregate is ignored', () => {
    const events = chain(requested, ['approved', { reviewer: { name: 'alice' }, quorum: 2 }]);
    const once = fold(events)!;
    assert.equal(evolveReview(once, events[1]!), once);
    assert.deepEqual(fold(events, once), once);
    const other = sealEvent({ type: 'dev.tracegate.session.started.v1', subject: 'req-1', source: '/x', data: {} }, GENESIS);
    assert.equal(evolveReview(once, other), once);
  });
});
