import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Approval } from '../domain/approval.js';
import { approvalMessage, APPROVE_ACTION, DENY_ACTION, denyModal, escapeMrkdwn } from './approval-message.js';

const pending: Approval = {
  id: '0199a1b2-0000-7000-8000-000000000001',
  requester: { id: 'key-ci', name: 'ci-agent' },
  target: 'billing',
  maskedCommand: "UPDATE users SET note = '<!channel> & <@U0ALICE>' WHERE id = $1",
  traceId: 'trace-9',
  sessionId: 'session-2',
  rule: 'agents-writes-need-review',
  reviewerGroup: 'dba',
  quorum: 2,
  requestedAt: new Date('2026-11-22T06:00:00Z'),
  expiresAt: new Date('2026-11-22T06:15:00Z'),
  status: 'pending',
  approvers: [],
  reason: '',
  decidedBy: null,
  finishedAt: null,
};

describe('the Slack message about a request', () => {
  it('escapes the command so it cannot mention or notify anyone', () => {
    const text = JSON.stringify(approvalMessage(pending).blocks);
    assert.ok(!text.includes('<!channel>') && !text.includes('<@U0ALICE>'), text);
    assert.ok(text.includes('&lt;!channel&gt; &amp; &lt;@U0ALICE&gt;'));
    assert.equal(escapeMrkdwn('a<b>&c'), 'a&lt;b&gt;&amp;c');
  });

  it('carries Approve and Deny buttons with the request id while pending, and the partial quorum', () => {
    const { blocks } = approvalMessage({ ...pending, approvers: [{ id: 'key-alice', name: 'alice' }] });
    const actions = blocks.find((b) => b.type === 'actions') as { elements: { action_id: string; value: string }[] };
    assert.deepEqual(actions.elements.map((e) => [e.action_id, e.value]), [[APPROVE_ACTION, pending.id], [DENY_ACTION, pending.id]]);
    assert.ok(JSON.stringify(blocks).includes('1 of 2 approvals so far: alice'));
  });

  it('shows the outcome and no buttons once final', () => {
    const denied = approvalMessage({ ...pending, status: 'denied', reason: 'use the <maintenance> window', decidedBy: { id: 'key-bob', name: 'bob' }, finishedAt: new Date() });
    assert.ok(!denied.blocks.some((b) => b.type === 'actions'));
    assert.ok(JSON.stringify(denied.blocks).includes(':no_entry: *Denied* by bob: use the &lt;maintenance&gt; window'));
    assert.match(denied.text, /^Approval denied: ci-agent on billing/);
  });

  it('the Deny modal asks for a required reason and carries the request id', () => {
    const modal = denyModal(pending) as { private_metadata: string; blocks: { type: string; optional?: boolean }[] };
    assert.equal(modal.private_metadata, pending.id);
    const input = modal.blocks.find((b) => b.type === 'input');
    assert.ok(input && !input.optional);
  });
});
