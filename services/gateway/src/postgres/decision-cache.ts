import type { StatementContext, StatementDecision, StatementJudge } from './ports.js';

/** Something that reports the policy version in force, and every change of it. */
export interface PolicyVersionSource {
  /** Calls `onVersion` with the current version and each new one; `onLost` when the feed breaks. */
  watch(onVersion: (version: string) => void, onLost: (error: Error) => void): () => void;
}

/**
 * Caches decisions in the gateway, so a statement seen before costs no round trip to the policy
 * service. A decision says which inputs it depended on (`dependsOn`, e.g. identity.groups,
 * target.name, command.fingerprint, trace.confidence), and it is cached under exactly those: a
 * rule that looks only at the statement is shared by every identity, one that reads trace
 * confidence is not reused for a trace with another. A decision that reads the time or the
 * session's attributes is never cached; one that names no inputs is cached under all of them.
 *
 * A cached decision is used only while the policy version it was made under is the one in force;
 * a new version empties the cache, and without a live version feed nothing is cached, so a
 * policy change can never be missed.
 */
export class CachingJudge implements StatementJudge {
  /** By statement (fingerprint, or text when it has none): the dependency sets seen for it, each with its decisions. */
  private readonly entries = new Map<string, Shape[]>();
  private size = 0;
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
          if (version !== this.version) this.clear();
          this.version = version;
        },
        () => {
          this.version = undefined;
          this.clear();
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

  private clear(): void {
    this.entries.clear();
    this.size = 0;
  }

  async decide(statement: StatementContext): Promise<StatementDecision> {
    const version = this.version;
    // An unparsed statement is decided as opaque text: never from the cache.
    const statementKey = statement.parsed ? statement.fingerprint || `text:${statement.text}` : undefined;
    if (statementKey && version) {
      const shapes = this.entries.get(statementKey);
      if (shapes) {
        for (const shape of shapes) {
          const cached = shape.decisions.get(keyOf(shape.dependsOn, statement));
          if (cached && cached.policyVersion === version) {
            this.hits += 1;
            return cached;
          }
        }
      }
    }
    this.misses += 1;
    const decision = await this.inner.decide(statement);
    if (statementKey && version && decision.policyVersion === this.version && cacheable(decision.dependsOn)) this.remember(statementKey, decision, statement);
    return decision;
  }

  private remember(statementKey: string, decision: StatementDecision, statement: StatementContext): void {
    const dependsOn = decision.dependsOn && decision.dependsOn.length > 0 ? [...decision.dependsOn].sort() : ALL_INPUTS;
    let shapes = this.entries.get(statementKey);
    if (!shapes) {
      shapes = [];
      this.entries.set(statementKey, shapes);
    }
    let shape = shapes.find((s) => s.dependsOn.join() === dependsOn.join());
    if (!shape) {
      shape = { dependsOn, decisions: new Map() };
      shapes.push(shape);
    }
    shape.decisions.set(keyOf(dependsOn, statement), decision);
    this.size += 1;
    // Bounded: past the limit start over (a new policy version does the same); entries are small and refill on the next misses.
    if (this.size > this.maxEntries) this.clear();
  }
}

interface Shape {
  readonly dependsOn: readonly string[];
  readonly decisions: Map<string, StatementDecision>;
}

/** Used when a decision names no inputs: everything the gateway sends. */
const ALL_INPUTS = ['command.fingerprint', 'identity.groups', 'identity.id', 'identity.kind', 'target.name', 'trace'];

/** Inputs that change by themselves (the clock) or that the gateway does not key on: such a decision is not reused. */
function cacheable(dependsOn: readonly string[] | undefined): boolean {
  return !(dependsOn ?? []).some((path) => path === 'time' || path.startsWith('time.') || path === 'session' || path.startsWith('session.'));
}

/** The values of exactly these inputs. The protocol and multi-statement flag always count: they change how a statement runs. */
function keyOf(dependsOn: readonly string[], s: StatementContext): string {
  const parts: unknown[] = [s.protocol, s.inMultiStatement];
  for (const path of dependsOn) parts.push(valueOf(path, s));
  return JSON.stringify(parts);
}

function valueOf(path: string, s: StatementContext): unknown {
  const [root, field] = path.split('.', 2);
  switch (root) {
    case 'identity':
      if (field === 'id') return s.identity.id;
      if (field === 'kind') return s.identity.kind;
      if (field === 'groups') return [...s.identity.groups].sort();
      if (field === 'name') return s.identity.name;
      return [s.identity.id, s.identity.kind, [...s.identity.groups].sort()];
    case 'target':
      // Labels and type are the target's, looked up by name: the name stands for all of it.
      return s.target;
    case 'command':
    case 'statement':
      return field === 'text' ? s.text : s.fingerprint || s.text;
    case 'trace': {
      const t = s.trace;
      if (!t) return null;
      if (field === 'confidence') return t.confidence;
      if (field === 'model') return t.model;
      if (field === 'tags') return [...t.tags].sort();
      if (field === 'present') return true;
      return [t.confidence, t.model, [...t.tags].sort()];
    }
    default:
      // An input this gateway does not know: key on everything it has.
      return [s.identity.id, s.identity.kind, [...s.identity.groups].sort(), s.target, s.text, s.trace ?? null];
  }
}
