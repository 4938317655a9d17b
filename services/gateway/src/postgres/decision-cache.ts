import type { StatementContext, StatementDecision, StatementJudge } from './ports.js';

/** Something that reports the policy version in force, and every change of it. */
export interface PolicyVersionSource {
  /** Calls `onVersion` with the current version and each new one; `onLost` when the feed breaks. */
  watch(onVersion: (version: string) => void, onLost: (error: Error) => void): () => void;
}

/**
 * Caches decisions in the gateway, so a statement seen before costs no round trip to the policy
 * service. Keyed by what a decision is made of: the identity's attributes, the target, the
 * statement's fingerprint (the same for statements that differ only in constants) and where it
 * stands. A cached decision is used only while the policy version it was made under is the one
 * in force; a new version empties the cache, and without a live version feed nothing is cached,
 * so a policy change can never be missed.
 */
export class CachingJudge implements StatementJudge {
  private readonly entries = new Map<string, StatementDecision>();
  private version: string | undefined;
  private stopWatching: (() => void) | undefined;
  hits = 0;
  misses = 0;

  constructor(
    private readonly inner: StatementJudge,
    private readonly versions: PolicyVersionSource,
    private readonly maxEntries = 10_000,
    private readonly retryMs = 1000,
  ) {}

  start(): void {
    const connect = () => {
      this.stopWatching = this.versions.watch(
        (version) => {
          if (version !== this.version) this.entries.clear();
          this.version = version;
        },
        () => {
          this.version = undefined;
          this.entries.clear();
          setTimeout(connect, this.retryMs).unref();
        },
      );
    };
    connect();
  }

  stop(): void {
    this.stopWatching?.();
    this.version = undefined;
  }

  async decide(statement: StatementContext): Promise<StatementDecision> {
    const key = statement.parsed && statement.fingerprint ? cacheKey(statement) : undefined;
    const version = this.version;
    if (key && version) {
      const cached = this.entries.get(key);
      if (cached && cached.policyVersion === version) {
        this.hits += 1;
        // Refresh its place: the map's order is the eviction order.
        this.entries.delete(key);
        this.entries.set(key, cached);
        return cached;
      }
    }
    this.misses += 1;
    const decision = await this.inner.decide(statement);
    if (key && version && decision.policyVersion === this.version) {
      this.entries.set(key, decision);
      if (this.entries.size > this.maxEntries) this.entries.delete(this.entries.keys().next().value!);
    }
    return decision;
  }
}

function cacheKey(s: StatementContext): string {
  const id = s.identity;
  // Trace features are policy input: the same statement with another trace may be decided otherwise.
  const trace = s.trace ? [s.trace.confidence, s.trace.model, [...s.trace.tags].sort()] : null;
  return JSON.stringify([id.id, id.kind, [...id.groups].sort(), s.target, s.fingerprint, s.protocol, s.inMultiStatement, trace]);
}
