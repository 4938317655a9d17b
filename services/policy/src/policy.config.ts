import { ConfigProblem, env, type ConfigField, type ConfigOf } from '@tracegate/runtime';
import { BUILTIN_POLICY_SOURCE, BUILTIN_POLICY_YAML } from './domain/builtin-policy.js';
import { parsePolicyDocument, type ActivePolicy } from './domain/policy-document.js';
import { PolicyError } from './domain/policy-error.js';
import { readPolicyLocation, type PolicyLocation } from './repositories/policy-file.repository.js';

export const POLICY_CONFIG = Symbol('POLICY_CONFIG');

/** The policy in force at start-up, and where it came from (undefined: the built-in one). */
export interface StartupPolicy {
  readonly policy: ActivePolicy;
  readonly location: PolicyLocation | undefined;
}

/**
 * TRACEGATE_POLICY_DIR names a directory of YAML policy documents (read as one policy), or
 * TRACEGATE_POLICY_FILE one document; with neither, the last policy published through the API
 * or else the built-in one (domain/builtin-policy.ts) applies. The documents are read and
 * validated with the rest of the configuration, so a bad policy stops start-up in the same
 * message as any other bad setting, naming each bad field.
 */
function policyFrom(variable: string, kind: 'file' | 'directory'): ConfigField<StartupPolicy | undefined> {
  return {
    env: variable,
    parse(raw) {
      if (raw === undefined) return undefined;
      const location: PolicyLocation = kind === 'file' ? { file: raw } : { directory: raw };
      try {
        return { policy: readPolicyLocation(location), location };
      } catch (error) {
        if (!(error instanceof PolicyError)) throw error;
        // Nested under the variable's name in the start-up message.
        throw new ConfigProblem(error.message.replaceAll('\n  - ', '\n      - '));
      }
    },
  };
}

/** The built-in policy: used when no directory or file is named and nothing was published. */
export function builtinPolicy(): StartupPolicy {
  return { policy: parsePolicyDocument(BUILTIN_POLICY_YAML, BUILTIN_POLICY_SOURCE), location: undefined };
}

export const POLICY_CONFIG_SCHEMA = {
  fromDirectory: policyFrom('TRACEGATE_POLICY_DIR', 'directory'),
  fromFile: policyFrom('TRACEGATE_POLICY_FILE', 'file'),
  internalToken: env.string('TRACEGATE_INTERNAL_TOKEN', { pattern: /^.{32,}$/, describe: 'a shared secret of at least 32 characters (`openssl rand -base64 32`)', secret: true }),
};

export type PolicyConfig = ConfigOf<typeof POLICY_CONFIG_SCHEMA>;
