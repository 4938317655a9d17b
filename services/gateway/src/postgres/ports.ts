import type { LineageAnalysis, MaskingHits, MaskingRefusal, ResultColumn, ResultMaskPlan, ViewDefinitions } from '@tracegate/masking-engine';
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
  /**
   * Whose registered SSH public key this is (one OpenSSH line, `ssh-ed25519 AAAA…`), for key name
   * `user`. The caller has already verified the client's signature with the key. Undefined as above.
   */
  authenticatePublicKey?(user: string, publicKey: string): Promise<VerifiedIdentity | undefined>;
}

export interface CredentialLease {
  readonly leaseId: string;
  readonly endpoint: TargetEndpoint;
  /** The target's labels (env=production…): policy input. */
  readonly labels?: Readonly<Record<string, string>>;
  /** An SSH target's pinned host key (one OpenSSH line): the gateway refuses a target presenting any other. */
  readonly hostKey?: string;
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
  /** Who must approve, for a review effect. */
  readonly review?: ReviewTerms;
  /** The policy inputs the decision read (identity.groups, command.fingerprint, trace.confidence…): the cache keys on exactly these. */
  readonly dependsOn?: readonly string[];
  /** For a statement that was held: the approval request and how it ended. */
  readonly approval?: { readonly requestId: string; readonly state: ReviewOutcome['state'] };
}

export interface ReviewTerms {
  readonly reviewerGroup: string;
  readonly quorum: number;
  readonly timeoutSeconds: number;
}

/** What reviewers are asked to approve. The command is masked: reviewers never see raw secrets. */
export interface ReviewRequest {
  readonly sessionId: string;
  readonly identity: VerifiedIdentity;
  readonly target: string;
  readonly maskedCommand: string;
  readonly traceId: string;
  readonly rule: string;
  readonly terms: ReviewTerms;
}

export type ReviewOutcome =
  | { readonly state: 'approved'; readonly requestId: string; readonly approvers: readonly string[] }
  | { readonly state: 'denied' | 'expired' | 'withdrawn'; readonly requestId: string; readonly reason: string };

/**
 * The approvals service, seen from a held statement. `hold` opens a request, tells `onOpened` its
 * id (the client hears it in a NoticeResponse), and resolves once the request is final, however
 * long that takes and across restarts of the approvals service. Aborting the signal (the client
 * went away) withdraws the request.
 */
export interface ReviewDesk {
  hold(request: ReviewRequest, signal: AbortSignal, onOpened: (requestId: string) => void): Promise<ReviewOutcome>;
}

export interface StatementContext {
  readonly identity: VerifiedIdentity;
  readonly target: string;
  /** The target's labels as registered with the broker. */
  readonly targetLabels?: Readonly<Record<string, string>>;
  readonly text: string;
  readonly fingerprint: string;
  readonly parsed: boolean;
  readonly inMultiStatement: boolean;
  readonly protocol: 'simple' | 'extended' | 'function-call' | SshCommandKind;
  /** The reasoning trace attached to it, if any. */
  readonly traceId?: string;
  /** What policy may know of that trace. */
  readonly trace?: TraceFeatures;
  /** Bind parameter values as recorded: masked text, binary by size, null for NULL. Set only for the audit trail. */
  readonly parameters?: readonly (string | null)[];
}

/** How an SSH channel runs its command: `exec` (ssh host cmd), `shell` (interactive), `subsystem` (sftp). */
export type SshCommandKind = 'ssh-exec' | 'ssh-shell' | 'ssh-subsystem';

/** The features of a reasoning trace that policy decides on. */
export interface TraceFeatures {
  readonly confidence: number;
  readonly model: string;
  readonly tags: readonly string[];
}

/** Why a trace attached to a statement was not accepted: the statement is refused with this sentence. */
export class TraceRefusal extends Error {
  override readonly name = 'TraceRefusal';
}

/**
 * Where traces live (the audit service's TraceService). A trace id must exist and belong to the
 * identity attaching it: an agent cannot attach someone else's reasoning. Both methods throw
 * TraceRefusal for a trace that is not acceptable, and other errors when the service is unreachable.
 */
export interface TraceRegistry {
  resolve(traceId: string, identity: VerifiedIdentity, where: TraceSite): Promise<TraceFeatures>;
  /** Stores a small trace carried inline in a statement comment (JSON text); returns its id. */
  submitInline(traceJson: string, identity: VerifiedIdentity, where: TraceSite): Promise<{ readonly traceId: string; readonly features: TraceFeatures }>;
}

/** Where a trace is being attached: reader grants scoped by target cover it from then on. */
export interface TraceSite {
  readonly sessionId: string;
  readonly target: string;
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
  /** Default postgres. */
  readonly protocol?: 'postgres' | 'ssh';
}

export interface StatementCompletion {
  readonly commandTag: string;
  readonly rows: number;
  readonly durationMs: number;
  readonly sqlstate: string;
  readonly errorMessage: string;
  /** false when the target skipped it (an earlier error in the same batch). */
  readonly executed: boolean;
  /** How often each masking rule or detector fired on its result: never the values. */
  readonly masked?: Readonly<Record<string, number>>;
}

/**
 * Writes the session's events. `statementRequested` resolves only when the log has acknowledged
 * (strict durability): the statement is not forwarded before that.
 */
export interface SessionRecorder {
  sessionStarted(facts: SessionFacts): Promise<void>;
  statementRequested(sessionId: string, statementId: string, statement: StatementContext, decision: StatementDecision, parameterCount: number): Promise<void>;
  statementCompleted(sessionId: string, statementId: string, completion: StatementCompletion): void;
  /**
   * Rows of a statement's result as the client got them (masked), in chunks; `columns` in the
   * first chunk only. Written with the session's next append, as completions are.
   */
  statementResult(sessionId: string, statementId: string, chunk: number, columns: readonly string[], rows: readonly (readonly (string | null)[])[]): void;
  sessionEnded(sessionId: string, reason: string): Promise<void>;
}

// What a result looks like to masking, and how it is masked: the masking engine's own types.
export type { MaskingHits, MaskingRefusal, ResultColumn, ResultMaskPlan };

/**
 * Which source columns a query's output columns come from (the engine's analysis), when the
 * result's own statement text does not say: a FETCH from a cursor, an EXECUTE of a PREPAREd query.
 */
export type StatementLineage = LineageAnalysis;

/**
 * A target's views and materialized views with their defining queries, as its catalog had them
 * when last read: a column rule follows its column through them into the base tables.
 */
export interface TargetViews extends ViewDefinitions {
  /** Whether the name was a relation then (or was looked for moments ago): one it does not know calls for a fresh read. */
  knows(name: string, schema: string | undefined): boolean;
}

/** The targets' views, read from each target's catalog and cached per target: no round trip per statement. */
export interface ViewCatalog {
  /**
   * The target's views as last read, or the read in flight (wait for it: it may hold a change a
   * session just committed); undefined when they must be read (first use, too old, a failed read to retry).
   */
  current(target: string): TargetViews | Promise<TargetViews> | undefined;
  /**
   * Reads them again, logging in as `endpoint` says (the session's lease); callers during a read
   * share the next one. `looking` names the relations (`name` or `schema.name`) a statement
   * could not find: those still missing stay known as absent a while. Never rejects.
   */
  refresh(target: string, endpoint: TargetEndpoint, looking?: readonly string[]): Promise<TargetViews>;
}

/** A masking profile compiled for the hot path (the masking engine, libs/masking). */
export interface MaskingProfile {
  readonly name: string;
  readonly version: string;
  /** A plan for a result, or a sentence saying why it cannot be masked safely (then it is refused). */
  planResult(columns: readonly ResultColumn[], lineage: string | StatementLineage): ResultMaskPlan | MaskingRefusal;
  redactText(text: string): { readonly text: string; readonly hits: MaskingHits };
  createStreamRedactor(): { push(chunk: Buffer): Buffer; flush(): Buffer; end(): Buffer; hits(): MaskingHits };
}

/** The profiles in force, pushed by the masking service. */
export interface MaskingProfiles {
  /** undefined for a name no profile has: the statement is refused rather than run unmasked. */
  profile(name: string): MaskingProfile | undefined;
}
