import { maskingV1 } from '@tracegate/contracts';
import type { MaskingProfileSpec, MaskingRuleSpec } from './profile.js';
import type { MaskingStrategy } from './strategies.js';

const { Strategy } = maskingV1;

const TO_PROTO: Readonly<Record<MaskingStrategy, maskingV1.Strategy>> = {
  redact: Strategy.STRATEGY_REDACT,
  partial: Strategy.STRATEGY_PARTIAL,
  hash: Strategy.STRATEGY_HASH,
  null: Strategy.STRATEGY_NULL,
  'format-preserving': Strategy.STRATEGY_FORMAT_PRESERVING,
};

/** The proto form of a profile (WatchProfiles, GetProfile). */
export function profileToProto(spec: MaskingProfileSpec): maskingV1.MaskingProfile {
  return {
    name: spec.name,
    version: spec.version,
    rules: spec.rules.map((rule) => ({
      name: rule.name,
      column: rule.column ?? '',
      columnPattern: rule.columnPattern ?? '',
      jsonPath: rule.jsonPath ?? '',
      detector: rule.detector ?? '',
      strategy: TO_PROTO[rule.strategy],
      keepLast: rule.keepLast ?? 0,
    })),
  };
}

/**
 * A profile received over gRPC, as compileProfile takes it. An unknown strategy (a newer masking
 * service) becomes an invalid one, so compileProfile refuses the profile instead of masking less.
 */
export function profileFromProto(profile: maskingV1.MaskingProfile): MaskingProfileSpec {
  return {
    name: profile.name,
    version: profile.version,
    rules: profile.rules.map((rule): MaskingRuleSpec => {
      const strategy = (Object.keys(TO_PROTO) as MaskingStrategy[]).find((s) => TO_PROTO[s] === rule.strategy) ?? (`unknown strategy ${rule.strategy}` as MaskingStrategy);
      return {
        name: rule.name,
        strategy,
        ...(rule.column ? { column: rule.column } : {}),
        ...(rule.columnPattern ? { columnPattern: rule.columnPattern } : {}),
        ...(rule.jsonPath ? { jsonPath: rule.jsonPath } : {}),
        ...(rule.detector ? { detector: rule.detector } : {}),
        ...(rule.keepLast ? { keepLast: rule.keepLast } : {}),
      };
    }),
  };
}
