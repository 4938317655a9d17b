import { canonicalJson } from '@tracegate/events';
import type { PolicyDocument } from './policy-document.js';

/** What a new policy version changes: rules compared by name, and the defaults. */
export interface PolicyChanges {
  readonly addedRules: readonly string[];
  readonly removedRules: readonly string[];
  readonly changedRules: readonly string[];
  readonly defaultsChanged: boolean;
}

/** A document as stored with its version: canonical JSON, comparable without recompiling it. */
export function policyDefinition(document: PolicyDocument): string {
  return canonicalJson(document);
}

/** The changes from `previous` (a stored definition; undefined for the first version) to `next`. */
export function policyChanges(previous: string | undefined, next: PolicyDocument): PolicyChanges {
  const before = previous ? (JSON.parse(previous) as { defaults: unknown; rules: { name: string }[] }) : { defaults: undefined, rules: [] };
  const after = JSON.parse(policyDefinition(next)) as { defaults: unknown; rules: { name: string }[] };
  const old = new Map(before.rules.map((rule) => [rule.name, canonicalJson(rule)]));
  const now = new Map(after.rules.map((rule) => [rule.name, canonicalJson(rule)]));
  return {
    addedRules: [...now.keys()].filter((name) => !old.has(name)).sort(),
    removedRules: [...old.keys()].filter((name) => !now.has(name)).sort(),
    changedRules: [...now.entries()].filter(([name, rule]) => old.has(name) && old.get(name) !== rule).map(([name]) => name).sort(),
    defaultsChanged: previous !== undefined && canonicalJson(before.defaults) !== canonicalJson(after.defaults),
  };
}
