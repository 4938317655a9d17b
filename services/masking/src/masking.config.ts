import { statSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { MIN_HASH_KEY_BYTES } from '@tracegate/masking-engine';
import { ConfigProblem, env, type ConfigField, type ConfigOf } from '@tracegate/runtime';

export const MASKING_CONFIG = Symbol('MASKING_CONFIG');

/** A directory of YAML masking profiles (*.yaml, *.yml), one profile per file. */
function profilesDirectory(name: string): ConfigField<string | undefined> {
  return {
    env: name,
    parse(raw) {
      if (raw === undefined) return undefined;
      let isDirectory: boolean;
      try {
        isDirectory = statSync(raw).isDirectory();
      } catch (error) {
        throw new ConfigProblem(`'${raw}' cannot be read (${(error as NodeJS.ErrnoException).code ?? String(error)}); point it at a directory of YAML masking profiles, or unset it to use the built-in profile only`);
      }
      if (!isDirectory) throw new ConfigProblem(`'${raw}' is not a directory; put each masking profile in its own .yaml file in a directory and name the directory`);
      return raw;
    },
  };
}

export interface HashKey {
  readonly key: Buffer;
  /** True when none was configured and one was made for this process (tokens then change at restart). */
  readonly generated: boolean;
}

/**
 * The key of the hash and format-preserving strategies: base64 of at least 32 random bytes. The
 * gateway reads the same variable, so a value hashed by either gives the same token. Never echoed.
 */
function hashKey(name: string): ConfigField<HashKey> {
  return {
    env: name,
    parse(raw) {
      if (raw === undefined) return { key: randomBytes(32), generated: true };
      const key = /^[A-Za-z0-9+/_-]+={0,2}$/.test(raw) ? Buffer.from(raw, 'base64') : Buffer.alloc(0);
      if (key.length < MIN_HASH_KEY_BYTES) {
        throw new ConfigProblem(`(the value given) is not base64 of at least ${MIN_HASH_KEY_BYTES} bytes; generate one with \`openssl rand -base64 32\``);
      }
      return { key, generated: false };
    },
  };
}

export const MASKING_CONFIG_SCHEMA = {
  profilesDirectory: profilesDirectory('TRACEGATE_MASKING_PROFILES_DIR'),
  hashKey: hashKey('TRACEGATE_MASKING_HASH_KEY'),
  internalToken: env.string('TRACEGATE_INTERNAL_TOKEN', { pattern: /^.{32,}$/, describe: 'a shared secret of at least 32 characters (`openssl rand -base64 32`)', secret: true }),
};

export type MaskingConfig = ConfigOf<typeof MASKING_CONFIG_SCHEMA>;
