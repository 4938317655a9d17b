import type { Approval } from '../domain/approval.js';

/** Action ids of the buttons, and the callback id of the Deny modal: what interactions are routed by. */
export const APPROVE_ACTION = 'tracegate_approve';
export const DENY_ACTION = 'tracegate_deny';
export const DENY_MODAL = 'tracegate_deny_reason';
export const DENY_REASON_BLOCK = 'reason';
export const DENY_REASON_INPUT = 'reason_input';

type Block = Record<string, unknown>;

/** Slack mrkdwn treats &, < and > as control characters; user text must not link or mention anyone. */
export function escapeMrkdwn(text: string): string {
  return text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;');
}

const COMMAND_MAX = 2500; // a section's text may hold 3000 characters

/** Who, what, where and why: the part of the message that stays once the request is decided. */
function facts(a: Approval): Block[] {
  const command = a.maskedCommand.length > COMMAND_MAX ? `${a.maskedCommand.slice(0, COMMAND_MAX)}…` : a.maskedCommand;
  const expires = Math.floor(a.expiresAt.getTime() / 1000);
  return [
    {
      type: 'section',
      text: { type: 'mrkdwn', text: `*${escapeMrkdwn(a.requester.name || a.requester.id)}* wants to run on *${escapeMrkdwn(a.target)}*:\n\`\`\`${escapeMrkdwn(command).replaceAll('```', '`\u200b``')}\`\`\`` },
    },
    {
      type: 'section',
      fields: [
        { type: 'mrkdwn', text: `*Identity*\n${escapeMrkdwn(a.requester.name || '-')} (\`${escapeMrkdwn(a.requester.id)}\`)` },
        { type: 'mrkdwn', text: `*Target*\n${escapeMrkdwn(a.target)}` },
        { type: 'mrkdwn', text: `*Policy rule*\n${escapeMrkdwn(a.rule || '-')}` },
        { type: 'mrkdwn', text: `*Reviewers*\n${escapeMrkdwn(a.reviewerGroup)}, ${a.quorum} approval${a.quorum === 1 ? '' : 's'} needed` },
        { type: 'mrkdwn', text: `*Reasoning trace*\n${a.traceId ? `\`${escapeMrkdwn(a.traceId)}\`` : 'none attached'}` },
        { type: 'mrkdwn', text: `*Expires*\n<!date^${expires}^{date_short_pretty} {time}|${a.expiresAt.toISOString()}>` },
      ],
    },
    { type: 'context', elements: [{ type: 'mrkdwn', text: `request \`${a.id}\`${a.sessionId ? ` · session \`${escapeMrkdwn(a.sessionId)}\`` : ''}` }] },
  ];
}

function outcome(a: Approval): string {
  const by = (names: readonly { name: string; id: string }[]) => names.map((n) => escapeMrkdwn(n.name || n.id)).join(', ');
  switch (a.status) {
    case 'pending':
      return a.approvers.length > 0 ? `:hourglass: ${a.approvers.length} of ${a.quorum} approvals so far: ${by(a.approvers)}` : ':hourglass: waiting for a reviewer';
    case 'approved':
      return `:white_check_mark: *Approved* by ${by(a.approvers)}; the command runs`;
    case 'denied':
      return `:no_entry: *Denied* by ${by(a.decidedBy ? [a.decidedBy] : [])}: ${escapeMrkdwn(a.reason)}`;
    case 'expired':
      return `:alarm_clock: *Expired*: ${escapeMrkdwn(a.reason)}`;
    case 'withdrawn':
      return `:leftwards_arrow_with_hook: *Withdrawn*: ${escapeMrkdwn(a.reason)}`;
  }
}

/** The message for chat.postMessage / chat.update: buttons while pending, the outcome once final. */
export function approvalMessage(a: Approval): { text: string; blocks: Block[] } {
  const blocks: Block[] = [
    { type: 'header', text: { type: 'plain_text', text: `Approval ${a.status === 'pending' ? 'needed' : a.status}: ${a.target}`.slice(0, 150) } },
    ...facts(a),
    { type: 'section', text: { type: 'mrkdwn', text: outcome(a) } },
  ];
  if (a.status === 'pending') {
    blocks.push({
      type: 'actions',
      block_id: 'verdict',
      elements: [
        { type: 'button', action_id: APPROVE_ACTION, style: 'primary', value: a.id, text: { type: 'plain_text', text: 'Approve' } },
        { type: 'button', action_id: DENY_ACTION, style: 'danger', value: a.id, text: { type: 'plain_text', text: 'Deny…' } },
      ],
    });
  }
  // The notification text (and what screen readers announce) when blocks are not shown.
  const text = `${a.status === 'pending' ? 'Approval needed' : `Approval ${a.status}`}: ${a.requester.name || a.requester.id} on ${a.target}: ${a.maskedCommand.slice(0, 200)}`;
  return { text, blocks };
}

/** The modal Deny opens: one required reason, the request id carried in private_metadata. */
export function denyModal(a: Approval): Block {
  return {
    type: 'modal',
    callback_id: DENY_MODAL,
    private_metadata: a.id,
    title: { type: 'plain_text', text: 'Deny request' },
    submit: { type: 'plain_text', text: 'Deny' },
    close: { type: 'plain_text', text: 'Cancel' },
    blocks: [
      { type: 'section', text: { type: 'mrkdwn', text: `Deny *${escapeMrkdwn(a.requester.name || a.requester.id)}* on *${escapeMrkdwn(a.target)}*? They read your reason.` } },
      {
        type: 'input',
        block_id: DENY_REASON_BLOCK,
        label: { type: 'plain_text', text: 'Reason' },
        element: { type: 'plain_text_input', action_id: DENY_REASON_INPUT, multiline: true, max_length: 1000 },
      },
    ],
  };
}
