import { DETECTOR_NAMES, isDetectorName } from './detectors.js';
import { isStrategy, STRATEGIES, type MaskingStrategy } from './strategies.js';
import { parseJsonPath } from './json-path.js';

/**
 * A masking profile as written (YAML) and carried (proto tracegate.masking.v1.MaskingProfile):
 * a name, a version, and rules. Each rule has exactly one selector.
 */
export interface MaskingProfileSpec {
  readonly name: string;
  readonly version: string;
  readonly rules: readonly MaskingRuleSpec[];
}

export interface MaskingRuleSpec {
  readonly name: string;
  /** A result column by name: `email`, or `users.email` for one table's column only. */
  readonly column?: string;
  /** A regular expression over column names (case-insensitive), e.g. `pass(word)?|secret`. */
  readonly columnPattern?: string;
  /** A JSON path inside json/jsonb values and JSON text: `$.card.number`, `$.items[*].email`, `$..ssn`. */
  readonly jsonPath?: string;
  /** A detector over free text (see DETECTOR_NAMES), or `*` for all of them. */
  readonly detector?: string;
  readonly strategy: MaskingStrategy;
  /** For `partial`: how many trailing characters stay visible. */
  readonly keepLast?: number;
}

/** How often each column rule and detector fired, by name: counts, never values. */
export type MaskingHits = Readonly<Record<string, number>>;

/** A profile that cannot be used, with a sentence per problem naming the rule. */
export class MaskingProfileError extends Error {
  override readonly name = 'MaskingProfileError';
  constructor(
    readonly profile: string,
    readonly problems: readonly string[],
  ) {
    super(`masking profile '${profile}' is invalid: ${problems.join('; ')}`);
  }
}

const PROFILE_NAME = /^[a-z0-9][a-z0-9._-]{0,62}$/;

/** Every problem of a profile spec (empty when it is usable). */
export function validateProfileSpec(spec: MaskingProfileSpec): string[] {
  const problems: string[] = [];
  if (!PROFILE_NAME.test(spec.name)) problems.push(`the name '${spec.name}' must be lower-case letters, digits, '.', '_' or '-' (at most 63)`);
  if (!spec.version) problems.push('the version is empty; give each revision of a profile a version');
  const seen = new Set<string>();
  spec.rules.forEach((rule, index) => {
    const where = `rule ${index + 1}${rule.name ? ` ('${rule.name}')` : ''}`;
    if (!rule.name) problems.push(`${where} has no name; name each rule, its hits are counted by name`);
    else if (seen.has(rule.name)) problems.push(`${where}: the name is used twice; rule names must be unique`);
    seen.add(rule.name);
    const selectors = [rule.column, rule.columnPattern, rule.jsonPath, rule.detector].filter((s) => s !== undefined && s !== '');
    if (selectors.length !== 1) {
      problems.push(`${where} has ${selectors.length} selectors; give exactly one of column, column_pattern, json_path, detector`);
    }
    if (!isStrategy(rule.strategy)) problems.push(`${where}: strategy '${String(rule.strategy)}' is not one of ${STRATEGIES.join(', ')}`);
    if (rule.strategy === 'partial' && !(Number.isInteger(rule.keepLast) && rule.keepLast! > 0)) {
      problems.push(`${where}: the partial strategy needs keep_last, a whole number of characters to keep (e.g. 4)`);
    }
    if (rule.columnPattern) {
      try {
        new RegExp(rule.columnPattern, 'i');
      } catch (error) {
        problems.push(`${where}: column_pattern is not a regular expression (${(error as Error).message})`);
      }
    }
    if (rule.jsonPath) {
      try {
        parseJsonPath(rule.jsonPath);
      } catch (error) {
        problems.push(`${where}: ${(error as Error).message}`);
      }
    }
    if (rule.detector && rule.detector !== '*' && !isDetectorName(rule.detector)) {
      problems.push(`${where}: detector '${rule.detector}' is unknown; use one of ${DETECTOR_NAMES.join(', ')} or '*'`);
    }
  });
  return problems;
}
