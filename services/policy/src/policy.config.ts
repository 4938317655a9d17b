import { ConfigProblem, type ConfigField, type ConfigOf } from '@tracegate/runtime';
import { BUILTIN_POLICY_SOURCE, BUILTIN_POLICY_YAML } from './domain/builtin-policy.js';
import { parsePolicyDocument, type ActivePolicy } from './domain/policy-document.js';
import { PolicyError } from './domain/policy-error.js';
import { readPolicyFile } from './repositories/policy-file.repository.js';

export const POLICY_CONFIG = Symbol('POLICY_CONFIG');

/** The policy in force at start-up, and the file it came from (undefined: the built-in one). */
export interface StartupPolicy {
  readonly policy: ActivePolicy;
  readonly file: string | undefined;
}

/**
 * TRACEGATE_POLICY_FILE names a YAML policy document; unset, the built-in policy applies
 * (domain/builtin-policy.ts). The document is read and validated with the rest of the
 * configuration, so a bad policy stops start-up in the same message as any other bad setting,
 * naming each bad field.
 */
function policyFile(name: string): ConfigField<StartupPolicy> {
  return {
    env: name,
    parse(raw) {
      try {
        if (raw === undefined) return { policy: parsePolicyDocument(BUILTIN_POLICY_YAML, BUILTIN_POLICY_SOURCE), file: undefined };
        return { policy: readPolicyFile(raw), file: raw };
      } catch (error) {
        if (!(error instanceof PolicyError)) throw error;
        // Nested under the variable's name in the start-up message.
        throw new ConfigProblem(error.message.replaceAll('\n  - ', '\n      - '));
      }
    },
  };
}

export const POLICY_CONFIG_SCHEMA = {
  startup: policyFile('TRACEGATE_POLICY_FILE'),
};

export type PolicyConfig = ConfigOf<typeof POLICY_CONFIG_SCHEMA>;
