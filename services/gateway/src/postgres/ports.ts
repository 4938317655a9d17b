import type { TargetEndpoint } from './upstream-login.js';

/** Who a client proved to be, with its API key (later: an OIDC or grant token). */
export interface VerifiedIdentity {
  readonly id: string;
  readonly name: string;
  readonly kind: 'agent' | 'human' | 'service';
  readonly groups: readonly string[];
}

/** Checks the password a client gave at start-up. Pluggable: API keys now, OIDC and grant tokens later. */
export interface ClientAuthenticator {
  /** Resolves the identity, or undefined when the credential is unknown, wrong or revoked (one answer for all three). */
  authenticate(user: string, password: string): Promise<VerifiedIdentity | undefined>;
}

export interface CredentialLease {
  readonly leaseId: string;
  readonly endpoint: TargetEndpoint;
}

/** The broker: short-lived credentials for a target, never shown to the caller. */
export interface CredentialBroker {
  checkout(target: string, sessionId: string, identity: VerifiedIdentity): Promise<CredentialLease>;
  release(leaseId: string): Promise<void>;
}

export type StatementEffect = 'allow' | 'deny' | 'review';

export interface StatementDecision {
  readonly effect: StatementEffect;
  readonly rule: string;
  /** What a denied caller reads. */
  readonly reason: string;
  readonly policyVersion: string;
  readonly maskingProfile: string;
}

export interface StatementContext {
  readonly identity: VerifiedIdentity;
  readonly target: string;
  readonly text: string;
  readonly fingerprint: string;
  readonly parsed: boolean;
  readonly inMultiStatement: boolean;
  readonly protocol: 'simple' | 'extended' | 'function-call';
}

/** The policy service. A decision may take long (review): the session waits, others don't. */
export interface StatementJudge {
  decide(statement: StatementContext): Promise<StatementDecision>;
}

export interface SessionFacts {
  readonly sessionId: string;
  readonly identity: VerifiedIdentity;
  readonly target: string;
  readonly clientAddress: string;
  readonly applicationName: string;
  readonly leaseId: string;
}

export interface StatementCompletion {
  readonly commandTag: string;
  readonly rows: number;
  readonly durationMs: number;
  readonly sqlstate: string;
  readonly errorMessage: string;
  /** false when the target skipped it (an earlier error in the same batch). */
  readonly executed: boolean;
}

/**
 * Writes the session's events. `statementRequested` resolves only when the log has acknowledged
 * (strict durability): the statement is not forwarded before that.
 */
export interface SessionRecorder {
  sessionStarted(facts: SessionFacts): Promise<void>;
  statementRequested(sessionId: string, statementId: string, statement: StatementContext, decision: StatementDecision, parameterCount: number): Promise<void>;
  statementCompleted(sessionId: string, statementId: string, completion: StatementCompletion): void;
  sessionEnded(sessionId: string, reason: string): Promise<void>;
}
