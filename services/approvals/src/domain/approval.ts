import { ApprovalError, ApprovalErrorCode } from '../errors.js';

/**
 * An approval request as an event-sourced aggregate: a pure `decide(command, state) -> events`
 * says what happens, a pure `evolve(state, event) -> state` says what that makes of the request.
 * Every rule about who may decide lives here; the service only loads, decides and stores.
 */

export type ApprovalStatus = 'pending' | 'approved' | 'denied' | 'expired' | 'withdrawn';
export const FINAL_STATUSES: readonly ApprovalStatus[] = ['approved', 'denied', 'expired', 'withdrawn'];

export interface IdentityRef {
  readonly id: string;
  readonly name: string;
}

/** A tracegate identity as the broker knows it, about to decide a request. */
export interface Reviewer extends IdentityRef {
  readonly kind: 'agent' | 'human' | 'service';
  readonly groups: readonly string[];
}

/** What is asked for, by whom, and who may answer. */
export interface ApprovalTerms {
  readonly id: string;
  readonly requester: IdentityRef;
  readonly target: string;
  /** The command after masking: reviewers never see raw secrets. */
  readonly maskedCommand: string;
  readonly traceId: string;
  readonly sessionId: string;
  /** The policy rule that asked for review. */
  readonly rule: string;
  readonly reviewerGroup: string;
  /** How many distinct reviewers must approve. */
  readonly quorum: number;
  readonly requestedAt: Date;
  readonly expiresAt: Date;
}

export interface Approval extends ApprovalTerms {
  readonly status: ApprovalStatus;
  /** Each approving reviewer once, in the order they approved. */
  readonly approvers: readonly IdentityRef[];
  /** Why it was denied, expired or withdrawn; empty otherwise. */
  readonly reason: string;
  /** Who denied or withdrew it. */
  readonly decidedBy: IdentityRef | null;
  readonly finishedAt: Date | null;
}

export type ApprovalState = { readonly status: 'none' } | Approval;
export const NO_APPROVAL: ApprovalState = { status: 'none' };

/** Events carry dates as ISO strings: they travel as JSON on the log and are replayed from it. */
export type ApprovalEvent =
  | {
      readonly type: 'requested';
      readonly data: {
        readonly id: string;
        readonly requester: IdentityRef;
        readonly target: string;
        readonly maskedCommand: string;
        readonly traceId: string;
        readonly sessionId: string;
        readonly rule: string;
        readonly reviewerGroup: string;
        readonly quorum: number;
        readonly requestedAt: string;
        readonly expiresAt: string;
      };
    }
  | { readonly type: 'approved'; readonly data: { readonly id: string; readonly reviewer: IdentityRef; readonly at: string; readonly approvals: number; readonly quorum: number } }
  | { readonly type: 'denied'; readonly data: { readonly id: string; readonly reviewer: IdentityRef; readonly reason: string; readonly at: string } }
  | { readonly type: 'expired'; readonly data: { readonly id: string; readonly at: string; readonly reason: string } }
  | { readonly type: 'withdrawn'; readonly data: { readonly id: string; readonly requester: IdentityRef; readonly reason: string; readonly at: string } };

export type ApprovalCommand =
  | { readonly kind: 'request'; readonly terms: ApprovalTerms }
  | { readonly kind: 'approve'; readonly reviewer: Reviewer; readonly at: Date }
  | { readonly kind: 'deny'; readonly reviewer: Reviewer; readonly reason: string; readonly at: Date }
  | { readonly kind: 'expire'; readonly at: Date }
  | { readonly kind: 'withdraw'; readonly requesterId: string; readonly reason: string; readonly at: Date };

export const MAX_QUORUM = 10;
const REASON_MAX = 1000;

export function isFinal(state: ApprovalState): boolean {
  return state.status !== 'none' && state.status !== 'pending';
}

/** The events a command leads to, or an ApprovalError saying why it is refused. */
export function decide(command: ApprovalCommand, state: ApprovalState): ApprovalEvent[] {
  if (command.kind === 'request') return decideRequest(command.terms, state);
  if (state.status === 'none') throw new ApprovalError(ApprovalErrorCode.RequestNotFound, 'no such approval request');
  switch (command.kind) {
    case 'approve': {
      const reviewer = command.reviewer;
      assertMayDecide(state, reviewer, 'approve');
      if (state.approvers.some((a) => a.id === reviewer.id)) {
        const missing = state.quorum - state.approvers.length;
        throw new ApprovalError(
          ApprovalErrorCode.AlreadyApproved,
          `you already approved request ${state.id}; each reviewer counts once, so it needs ${missing} more approval${missing === 1 ? '' : 's'} from other members of '${state.reviewerGroup}'`,
        );
      }
      return [{ type: 'approved', data: { id: state.id, reviewer: ref(reviewer), at: command.at.toISOString(), approvals: state.approvers.length + 1, quorum: state.quorum } }];
    }
    case 'deny': {
      assertMayDecide(state, command.reviewer, 'deny');
      const reason = command.reason.trim();
      if (!reason) throw ApprovalError.invalidArgument('reason', `is required to deny request ${state.id}: the requester reads it (e.g. --reason "run it in the maintenance window")`);
      if (reason.length > REASON_MAX) throw ApprovalError.invalidArgument('reason', `is ${reason.length} characters long; keep it to ${REASON_MAX}`);
      return [{ type: 'denied', data: { id: state.id, reviewer: ref(command.reviewer), reason, at: command.at.toISOString() } }];
    }
    case 'expire': {
      // A timer may fire late (after a decision) or early (clock skew across a restart): both are no-ops.
      if (state.status !== 'pending' || command.at.getTime() < state.expiresAt.getTime()) return [];
      const got = state.approvers.length;
      const reason = `no decision in time: ${got} of ${state.quorum} required approval${state.quorum === 1 ? '' : 's'} from '${state.reviewerGroup}' before the request expired at ${state.expiresAt.toISOString()}`;
      return [{ type: 'expired', data: { id: state.id, at: command.at.toISOString(), reason } }];
    }
    case 'withdraw': {
      if (command.requesterId !== state.requester.id && command.requesterId !== state.requester.name) {
        throw new ApprovalError(ApprovalErrorCode.NotTheRequester, `only the requester (${state.requester.name || state.requester.id}) can withdraw request ${state.id}`);
      }
      // Withdrawing twice (a retry after a lost answer) changes nothing and is not an error.
      if (state.status === 'withdrawn') return [];
      if (isFinal(state)) throw alreadyFinal(state, 'withdraw');
      const reason = command.reason.trim().slice(0, REASON_MAX) || 'withdrawn by the requester';
      return [{ type: 'withdrawn', data: { id: state.id, requester: state.requester, reason, at: command.at.toISOString() } }];
    }
    default:
      throw new TypeError(`unknown approval command ${(command as { kind: string }).kind}`);
  }
}

function decideRequest(terms: ApprovalTerms, state: ApprovalState): ApprovalEvent[] {
  if (state.status !== 'none') throw new ApprovalError(ApprovalErrorCode.RequestExists, `approval request ${terms.id} exists already`);
  if (!terms.requester.id) throw ApprovalError.invalidArgument('requester_id', 'is required: the identity whose command is held');
  if (!terms.target) throw ApprovalError.invalidArgument('target', 'is required: the target the command is for');
  if (!terms.maskedCommand) throw ApprovalError.invalidArgument('masked_command', 'is required: reviewers decide on the command they can read');
  if (!terms.reviewerGroup) throw ApprovalError.invalidArgument('reviewer_group', "is required: the group whose members may decide (the policy rule's reviewers)");
  if (!Number.isInteger(terms.quorum) || terms.quorum < 1 || terms.quorum > MAX_QUORUM) {
    throw ApprovalError.invalidArgument('quorum', `${terms.quorum} is not a number of approvers from 1 to ${MAX_QUORUM}`);
  }
  if (terms.expiresAt.getTime() <= terms.requestedAt.getTime()) throw ApprovalError.invalidArgument('timeout_seconds', 'must leave reviewers some time: use at least 1 second');
  return [
    {
      type: 'requested',
      data: {
        id: terms.id,
        requester: ref(terms.requester),
        target: terms.target,
        maskedCommand: terms.maskedCommand,
        traceId: terms.traceId,
        sessionId: terms.sessionId,
        rule: terms.rule,
        reviewerGroup: terms.reviewerGroup,
        quorum: terms.quorum,
        requestedAt: terms.requestedAt.toISOString(),
        expiresAt: terms.expiresAt.toISOString(),
      },
    },
  ];
}

/** The rules every verdict shares: still pending, a person, not the requester, in the group. */
function assertMayDecide(state: Approval, reviewer: Reviewer, verb: 'approve' | 'deny'): void {
  if (isFinal(state)) throw alreadyFinal(state, verb);
  if (reviewer.id === state.requester.id) {
    throw new ApprovalError(
      ApprovalErrorCode.SelfDecision,
      verb === 'approve'
        ? `you requested this change; another member of '${state.reviewerGroup}' must approve it`
        : `you requested this change; withdraw it by ending the held session, or let another member of '${state.reviewerGroup}' decide`,
    );
  }
  if (reviewer.kind !== 'human') {
    throw new ApprovalError(
      ApprovalErrorCode.NotAReviewer,
      `'${reviewer.name}' is a${reviewer.kind === 'agent' ? 'n' : ''} ${reviewer.kind} identity; only people (API keys of kind human) review requests`,
    );
  }
  if (!reviewer.groups.includes(state.reviewerGroup)) {
    throw new ApprovalError(
      ApprovalErrorCode.NotInReviewerGroup,
      `'${reviewer.name}' is not in the reviewer group '${state.reviewerGroup}' of request ${state.id}; ask a member of '${state.reviewerGroup}' to ${verb} it`,
    );
  }
}

function alreadyFinal(state: Approval, verb: string): ApprovalError {
  const when = state.finishedAt ? ` at ${state.finishedAt.toISOString()}` : '';
  const why = state.reason ? ` (${state.reason})` : '';
  return new ApprovalError(ApprovalErrorCode.AlreadyFinal, `request ${state.id} was already ${state.status}${when}${why}; there is nothing left to ${verb}`);
}

function ref(identity: IdentityRef): IdentityRef {
  return { id: identity.id, name: identity.name };
}

/** What an event makes of the request. Pure, and total: replaying a request's events rebuilds it. */
export function evolve(state: ApprovalState, event: ApprovalEvent): ApprovalState {
  switch (event.type) {
    case 'requested': {
      const d = event.data;
      return {
        id: d.id,
        requester: d.requester,
        target: d.target,
        maskedCommand: d.maskedCommand,
        traceId: d.traceId,
        sessionId: d.sessionId,
        rule: d.rule,
        reviewerGroup: d.reviewerGroup,
        quorum: d.quorum,
        requestedAt: new Date(d.requestedAt),
        expiresAt: new Date(d.expiresAt),
        status: 'pending',
        approvers: [],
        reason: '',
        decidedBy: null,
        finishedAt: null,
      };
    }
    case 'approved': {
      if (state.status === 'none') return state;
      const approvers = [...state.approvers, event.data.reviewer];
      const reached = approvers.length >= state.quorum;
      return { ...state, approvers, status: reached ? 'approved' : state.status, finishedAt: reached ? new Date(event.data.at) : state.finishedAt };
    }
    case 'denied':
      if (state.status === 'none') return state;
      return { ...state, status: 'denied', reason: event.data.reason, decidedBy: event.data.reviewer, finishedAt: new Date(event.data.at) };
    case 'expired':
      if (state.status === 'none') return state;
      return { ...state, status: 'expired', reason: event.data.reason, finishedAt: new Date(event.data.at) };
    case 'withdrawn':
      if (state.status === 'none') return state;
      return { ...state, status: 'withdrawn', reason: event.data.reason, decidedBy: event.data.requester, finishedAt: new Date(event.data.at) };
    default:
      return state;
  }
}

export function evolveAll(events: readonly ApprovalEvent[], state: ApprovalState = NO_APPROVAL): ApprovalState {
  return events.reduce(evolve, state);
}

const EVENT_TYPE_PREFIX = 'dev.tracegate.approval.';

/** `requested` -> `dev.tracegate.approval.requested.v1`, the CloudEvents type on the log. */
export function cloudEventTypeOf(event: ApprovalEvent): string {
  return `${EVENT_TYPE_PREFIX}${event.type}.v1`;
}

const EVENT_NAMES = new Set<string>(['requested', 'approved', 'denied', 'expired', 'withdrawn']);

/** The domain event a stored CloudEvent carries, or undefined for a type this version does not know. */
export function approvalEventOf(cloudEvent: { readonly type: string; readonly data: unknown }): ApprovalEvent | undefined {
  const match = /^dev\.tracegate\.approval\.([a-z_]+)\.v1$/.exec(cloudEvent.type);
  if (!match || !EVENT_NAMES.has(match[1]!)) return undefined;
  return { type: match[1], data: cloudEvent.data } as ApprovalEvent;
}
