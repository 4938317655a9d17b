import { createHash } from 'node:crypto';
import YAML from 'yaml';
import { validateProfileSpec, type MaskingProfileSpec, type MaskingRuleSpec } from '@tracegate/masking-engine';
import { MaskingError, MaskingErrorCode } from './masking-error.js';

/** A profile as loaded: the spec, where it came from, and a digest of its content. */
export interface LoadedProfile {
  readonly spec: MaskingProfileSpec;
  readonly source: string;
  /** sha256 of the canonical JSON of the spec: tells a changed profile from a re-saved one. */
  readonly digest: string;
}

const RULE_KEYS: Readonly<Record<string, keyof MaskingRuleSpec>> = {
  name: 'name',
  column: 'column',
  column_pattern: 'columnPattern',
  json_path: 'jsonPath',
  detector: 'detector',
  strategy: 'strategy',
  keep_last: 'keepLast',
};
const PROFILE_KEYS = new Set(['name', 'version', 'rules', 'description']);

/**
 * Parses one YAML profile document. Every problem is reported at once, each as
 * `file:line:column: what is wrong`, so a typo is fixed in one edit.
 *
 *   name: billing
 *   version: "3"            # optional: without it, the version is the content's digest
 *   rules:
 *     - { name: cards, column: card_number, strategy: partial, keep_last: 4 }
 *     - { name: contact, json_path: $..email, strategy: hash }
 *     - { name: free-text, detector: "*", strategy: redact }
 */
export function parseProfileDocument(text: string, source: string): LoadedProfile {
  const doc = YAML.parseDocument(text, { prettyErrors: true });
  const at = (offset: number | undefined): string => {
    if (offset === undefined) return source;
    const before = text.slice(0, offset);
    const line = before.split('\n').length;
    return `${source}:${line}:${offset - before.lastIndexOf('\n')}`;
  };
  if (doc.errors.length > 0) {
    const problems = doc.errors.map((e) => {
      const pos = e.linePos?.[0];
      const message = e.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
      return `${pos ? `${source}:${pos.line}:${pos.col}` : source}: ${message}`;
    });
    throw invalid(source, problems);
  }
  const root = doc.contents as unknown as YamlMap | null;
  if (!root || !Array.isArray(root.items)) throw invalid(source, [`${source}: a masking profile is a mapping with name, version and rules`]);
  const problems: string[] = [];
  const spec: { name: string; version: string; rules: MaskingRuleSpec[] } = { name: '', version: '', rules: [] };
  const ruleStarts: (number | undefined)[] = [];
  for (const pair of root.items) {
    const key = String(pair.key?.value ?? '');
    const value = pair.value;
    if (!PROFILE_KEYS.has(key)) {
      problems.push(`${at(pair.key?.range?.[0])}: unknown key '${key}'; a profile has ${[...PROFILE_KEYS].join(', ')}`);
      continue;
    }
    if (key === 'name' || key === 'version') {
      if (value?.value === undefined || value.value === null || typeof value.value === 'object') problems.push(`${at(pair.key?.range?.[0])}: ${key} must be a string`);
      else spec[key] = String(value.value);
    }
    if (key === 'rules') {
      if (!value || !Array.isArray(value.items)) {
        problems.push(`${at(pair.key?.range?.[0])}: rules must be a list of rules`);
        continue;
      }
      for (const item of value.items as YamlNode[]) {
        ruleStarts.push(item.range?.[0]);
        const rule: Record<string, unknown> = {};
        if (!Array.isArray(item.items)) {
          problems.push(`${at(item.range?.[0])}: a rule is a mapping (name, one selector, strategy)`);
          spec.rules.push(rule as unknown as MaskingRuleSpec);
          continue;
        }
        for (const field of item.items as YamlPair[]) {
          const name = String(field.key?.value ?? '');
          const property = RULE_KEYS[name];
          if (!property) {
            problems.push(`${at(field.key?.range?.[0])}: unknown rule key '${name}'; a rule has ${Object.keys(RULE_KEYS).join(', ')}`);
            continue;
          }
          const v = field.value?.value;
          if (property === 'keepLast') {
            if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) problems.push(`${at(field.key?.range?.[0])}: keep_last must be a whole number of characters (e.g. 4)`);
            else rule[property] = v;
          } else if (v === undefined || v === null || typeof v === 'object') {
            problems.push(`${at(field.key?.range?.[0])}: ${name} must be a string`);
          } else {
            rule[property] = String(v);
          }
        }
        spec.rules.push(rule as unknown as MaskingRuleSpec);
      }
    }
  }
  if (!spec.name) problems.push(`${source}: the profile has no name; add name: <profile name> (policies name it in masking_profile)`);
  const digest = `sha256:${createHash('sha256').update(JSON.stringify(spec)).digest('hex')}`;
  if (!spec.version) spec.version = digest.slice(0, 'sha256:'.length + 16);
  if (problems.length === 0) {
    // The engine's own checks (selectors, strategies, patterns, detectors), placed at their rule.
    for (const problem of validateProfileSpec(spec)) {
      const rule = /^rule (\d+)/.exec(problem);
      problems.push(`${rule ? at(ruleStarts[Number(rule[1]) - 1]) : source}: ${problem}`);
    }
  }
  if (problems.length > 0) throw invalid(source, problems);
  return { spec, source, digest };
}

function invalid(source: string, problems: readonly string[]): MaskingError {
  return new MaskingError(MaskingErrorCode.InvalidProfile, `masking profile ${source} is invalid and was not loaded:\n  - ${problems.join('\n  - ')}`);
}

interface YamlNode {
  readonly value?: unknown;
  readonly items?: unknown[];
  readonly range?: [number, number];
}
interface YamlPair {
  readonly key: YamlNode | null;
  readonly value: YamlNode | null;
}
interface YamlMap {
  readonly items: YamlPair[];
}
