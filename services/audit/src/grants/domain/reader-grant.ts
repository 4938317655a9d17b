/**
 * A reader grant: one identity may read what one agent submitted, or what was done on one
 * target, if it was created within [from, until], until the grant expires or is revoked.
 */
export interface ReaderGrantRecord {
  readonly id: string;
  readonly reader: string;
  readonly agent: string | null;
  readonly target: string | null;
  readonly from: Date | null;
  readonly until: Date | null;
  readonly expiresAt: Date;
  readonly createdAt: Date;
  readonly revokedAt: Date | null;
  readonly reason: string;
}

/** What a read touches: who produced it, where it was used, when it was made. */
export interface ReadScope {
  /** The identity name that produced what is read (a trace's submitter, a session's identity). */
  readonly agent?: string;
  /** The target(s) it was used on. */
  readonly target?: string | readonly string[];
  /** When it was created: a grant's window is over this time. */
  readonly at: Date;
  /** What is read, for the refusal sentence: "trace t-…", "session 0193…". */
  readonly what: string;
}

export type ReadDecision = { readonly allowed: true; readonly grant: ReaderGrantRecord } | { readonly allowed: false; readonly reason: string };

export const MAX_GRANT_SECONDS = 30 * 24 * 3600;

function targetsOf(scope: ReadScope): readonly string[] {
  if (scope.target === undefined) return [];
  return typeof scope.target === 'string' ? [scope.target] : scope.target;
}

function scopeText(grant: ReaderGrantRecord): string {
  return grant.agent !== null ? `agent '${grant.agent}'` : `target '${grant.target}'`;
}

function windowText(grant: ReaderGrantRecord): string {
  if (!grant.from && !grant.until) return 'at any time';
  if (!grant.until) return `from ${grant.from!.toISOString()}`;
  if (!grant.from) return `until ${grant.until.toISOString()}`;
  return `from ${grant.from.toISOString()} until ${grant.until.toISOString()}`;
}

function suggestion(reader: string, scope: ReadScope): string {
  const targets = targetsOf(scope);
  const by = scope.agent ? `--agent ${scope.agent}` : targets[0] ? `--target ${targets[0]}` : '--agent <name>';
  return `an administrator can grant it: \`tracegate grants create --reader ${reader} ${by} --expires-in 1h\``;
}

/**
 * Pure: whether `reader` may read what `scope` describes at `now`, and by which grant. The
 * refusal says which condition failed (no grant for this agent or target, every such grant
 * expired or revoked, or made outside every grant's window) so the reader knows what to ask for.
 */
export function decideRead(grants: readonly ReaderGrantRecord[], reader: string, scope: ReadScope, now: Date): ReadDecision {
  const targets = targetsOf(scope);
  const matching = grants.filter((g) => g.reader === reader && ((g.agent !== null && g.agent === scope.agent) || (g.target !== null && targets.includes(g.target))));
  const scopeNames = [scope.agent ? `agent '${scope.agent}'` : undefined, ...targets.map((t) => `target '${t}'`)].filter(Boolean).join(' or ');
  if (matching.length === 0) {
    return { allowed: false, reason: `identity '${reader}' holds no reader grant for ${scopeNames || 'this record'}, so it may not read ${scope.what}; ${suggestion(reader, scope)}` };
  }
  const live = matching.filter((g) => g.revokedAt === null && g.expiresAt.getTime() > now.getTime());
  if (live.length === 0) {
    const last = [...matching].sort((a, b) => endOf(b).getTime() - endOf(a).getTime())[0]!;
    const ended = last.revokedAt !== null && last.revokedAt.getTime() <= last.expiresAt.getTime() ? `was revoked at ${last.revokedAt.toISOString()}` : `expired at ${last.expiresAt.toISOString()}`;
    return { allowed: false, reason: `reader grant ${last.id} (identity '${reader}', ${scopeText(last)}) ${ended}, so it may not read ${scope.what}; ${suggestion(reader, scope)}` };
  }
  const covering = live.filter((g) => within(g, scope.at));
  if (covering.length === 0) {
    const nearest = live[0]!;
    return {
      allowed: false,
      reason: `reader grant ${nearest.id} (identity '${reader}') covers ${scopeText(nearest)} ${windowText(nearest)}, but ${scope.what} was made at ${scope.at.toISOString()}, outside that window; an administrator can grant a window that includes it (--from/--until)`,
    };
  }
  // The one that lasts longest: the grant named in the access event stays valid the longest.
  const grant = [...covering].sort((a, b) => b.expiresAt.getTime() - a.expiresAt.getTime())[0]!;
  return { allowed: true, grant };
}

function endOf(grant: ReaderGrantRecord): Date {
  return grant.revokedAt !== null && grant.revokedAt.getTime() < grant.expiresAt.getTime() ? grant.revokedAt : grant.expiresAt;
}

function within(grant: ReaderGrantRecord, at: Date): boolean {
  if (grant.from && at.getTime() < grant.from.getTime()) return false;
  if (grant.until && at.getTime() > grant.until.getTime()) return false;
  return true;
}

export function isActive(grant: ReaderGrantRecord, now: Date): boolean {
  return grant.revokedAt === null && grant.expiresAt.getTime() > now.getTime();
}
