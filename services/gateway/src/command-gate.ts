import type { Logger } from '@tracegate/runtime';
import type { MaskingProfile, MaskingProfiles, ReviewDesk, ReviewTerms, StatementContext, StatementDecision, StatementJudge } from './postgres/ports.js';

/** Where a held command waits: its session, a signal that fires when the client goes away, and how the client hears the request id. */
export interface HoldSite {
  readonly sessionId: string;
  readonly signal: AbortSignal;
  onHeld(requestId: string, terms: ReviewTerms): void;
}

/** "a reviewer in 'dba' approves" / "2 reviewers in 'dba' approve": who a held command waits for. */
export function awaitedReviewers(terms: ReviewTerms): string {
  return terms.quorum > 1 ? `${terms.quorum} reviewers in '${terms.reviewerGroup}' approve` : `a reviewer in '${terms.reviewerGroup}' approves`;
}

/**
 * What every protocol does between a command and its decision: ask policy, give the decision the
 * fallback masking profile, refuse what names a profile the gateway has not loaded (never run
 * unmasked what policy said to mask), and hold a review until reviewers end it. A Postgres
 * statement and an SSH command go through the same gate; only how the client hears of a hold differs.
 */
export class CommandGate {
  constructor(
    private readonly deps: { readonly judge: StatementJudge; readonly reviews?: ReviewDesk | undefined; readonly masking?: MaskingProfiles | undefined; readonly logger: Logger },
    /** The profile for commands whose decision names none; '' for none. */
    private readonly fallbackProfile: string,
    /** 'statement' or 'command', as the client's messages name it. */
    private readonly noun: string,
  ) {}

  /** The profile that masks a command's output and what is recorded of it: its decision's, else the fallback. */
  profileFor(decision: StatementDecision): MaskingProfile | undefined {
    const name = decision.maskingProfile || this.fallbackProfile;
    return name ? this.deps.masking?.profile(name) : undefined;
  }

  async decide(context: StatementContext, hold: HoldSite): Promise<StatementDecision> {
    const decided = await this.deps.judge.decide(context);
    const fallback = this.fallbackProfile;
    const decision = !decided.maskingProfile && fallback && decided.effect !== 'deny' ? { ...decided, maskingProfile: fallback } : decided;
    if (decision.maskingProfile && decision.effect !== 'deny' && !this.deps.masking?.profile(decision.maskingProfile)) {
      return { ...decision, effect: 'deny', reason: `masking profile '${decision.maskingProfile}' named by rule ${decision.rule} is not loaded in the gateway, so the ${this.noun} was refused; check the masking service` };
    }
    if (decision.effect !== 'review') return decision;
    return this.holdForReview(context, decision, hold);
  }

  /**
   * A command whose effect is review waits here, in its own session only, until reviewers decide,
   * the request expires, or the client goes away (which withdraws it). Approved, it runs; otherwise
   * it is refused with the reason.
   */
  private async holdForReview(context: StatementContext, decision: StatementDecision, hold: HoldSite): Promise<StatementDecision> {
    const refuse = (reason: string, approval?: StatementDecision['approval']): StatementDecision => ({ ...decision, effect: 'deny', reason, ...(approval ? { approval } : {}) });
    const terms = decision.review;
    if (!this.deps.reviews || !terms) return refuse(`${decision.reason} (rule ${decision.rule}); no approvals service is configured, so it was refused`);
    let outcome;
    try {
      outcome = await this.deps.reviews.hold(
        {
          sessionId: hold.sessionId,
          identity: context.identity,
          target: context.target,
          // Reviewers never see raw secrets.
          maskedCommand: this.profileFor(decision)?.redactText(context.text).text ?? context.text,
          traceId: context.traceId ?? '',
          rule: decision.rule,
          terms,
        },
        hold.signal,
        (requestId) => hold.onHeld(requestId, terms),
      );
    } catch (error) {
      if (hold.signal.aborted) return refuse(`the client disconnected while the ${this.noun} was held`);
      this.deps.logger.warn({ session: hold.sessionId, err: (error as Error).message }, 'approval request failed');
      return refuse(`${decision.reason} (rule ${decision.rule}); the approvals service could not take the request, so it was refused: try again shortly`);
    }
    const approval = { requestId: outcome.requestId, state: outcome.state };
    switch (outcome.state) {
      case 'approved':
        return { ...decision, effect: 'allow', approval };
      case 'denied':
        return refuse(`approval request ${outcome.requestId} was denied: ${outcome.reason || 'no reason given'}`, approval);
      case 'expired':
        return refuse(`approval request ${outcome.requestId} expired before enough reviewers in '${terms.reviewerGroup}' approved it`, approval);
      case 'withdrawn':
        return refuse(`approval request ${outcome.requestId} was withdrawn${outcome.reason ? `: ${outcome.reason}` : ''}`, approval);
    }
  }
}
