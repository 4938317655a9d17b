/**
 * Configuration is read once at start-up from the environment and validated whole: a bad value
 * stops the process with one message that names every bad variable, so an operator fixes them all
 * in one go instead of one restart per typo.
 */
export interface ConfigField<T> {
  readonly env: string;
  /** Returns the value, or throws a ConfigProblem saying what is expected. */
  parse(raw: string | undefined): T;
}

export class ConfigProblem extends Error {}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(
    readonly component: string,
    readonly problems: readonly { env: string; problem: string }[],
  ) {
    const n = problems.length;
    super(
      `${component} cannot start: ${n} configuration value${n === 1 ? ' is' : 's are'} invalid:\n` +
        problems.map((p) => `  - ${p.env}: ${p.problem}`).join('\n'),
    );
  }
}

export type ConfigSchema = Record<string, ConfigField<unknown>>;
export type ConfigOf<S extends ConfigSchema> = { readonly [K in keyof S]: S[K] extends ConfigField<infer T> ? T : never };

export function loadConfig<S extends ConfigSchema>(
  component: string,
  schema: S,
  source: Record<string, string | undefined> = process.env,
): ConfigOf<S> {
  const problems: { env: string; problem: string }[] = [];
  const out: Record<string, unknown> = {};
  for (const [key, field] of Object.entries(schema)) {
    try {
      out[key] = field.parse(emptyToUndefined(source[field.env]));
    } catch (error) {
      if (!(error instanceof ConfigProblem)) throw error;
      problems.push({ env: field.env, problem: error.message });
    }
  }
  if (problems.length > 0) throw new ConfigError(component, problems);
  return out as ConfigOf<S>;
}

function emptyToUndefined(raw: string | undefined): string | undefined {
  return raw === undefined || raw.trim() === '' ? undefined : raw.trim();
}

/** Quotes a raw value for an error message; secrets are never echoed. */
function shown(raw: string, secret = false): string {
  return secret ? '(the value given)' : `'${raw.length > 80 ? `${raw.slice(0, 77)}…` : raw}'`;
}

export const env = {
  /** A setting that may be left out: undefined when unset, otherwise the field's own checks. */
  optional<T>(field: ConfigField<T>): ConfigField<T | undefined> {
    return { env: field.env, parse: (raw) => (raw === undefined ? undefined : field.parse(raw)) };
  },

  /** Where another service listens, `host:port`; undefined when unset (the caller's local default). */
  address(name: string): ConfigField<string | undefined> {
    return env.optional(env.string(name, { pattern: /^[^\s:]+:\d+$/, describe: 'host:port' }));
  },

  port(name: string, fallback: number): ConfigField<number> {
    return {
      env: name,
      parse(raw) {
        if (raw === undefined) return fallback;
        const n = Number(raw);
        if (!/^\d+$/.test(raw) || n < 1 || n > 65535) {
          throw new ConfigProblem(`${shown(raw)} is not a port number; use a whole number from 1 to 65535`);
        }
        return n;
      },
    };
  },

  int(name: string, opts: { fallback: number; min?: number; max?: number }): ConfigField<number> {
    return {
      env: name,
      parse(raw) {
        if (raw === undefined) return opts.fallback;
        const n = Number(raw);
        const min = opts.min ?? Number.MIN_SAFE_INTEGER;
        const max = opts.max ?? Number.MAX_SAFE_INTEGER;
        if (!/^-?\d+$/.test(raw) || n < min || n > max) {
          throw new ConfigProblem(`${shown(raw)} is not a whole number from ${min} to ${max}`);
        }
        return n;
      },
    };
  },

  /** `secret: true` keeps the value out of error messages (tokens, keys). */
  string(name: string, opts: { fallback?: string; pattern?: RegExp; describe?: string; secret?: boolean } = {}): ConfigField<string> {
    return {
      env: name,
      parse(raw) {
        const value = raw ?? opts.fallback;
        if (value === undefined) throw new ConfigProblem('is required but not set');
        if (opts.pattern && !opts.pattern.test(value)) {
          throw new ConfigProblem(`${shown(value, opts.secret)} is not ${opts.describe ?? `of the form ${opts.pattern}`}`);
        }
        return value;
      },
    };
  },

  oneOf<const T extends string>(name: string, values: readonly T[], fallback: T): ConfigField<T> {
    return {
      env: name,
      parse(raw) {
        if (raw === undefined) return fallback;
        if (!(values as readonly string[]).includes(raw)) {
          throw new ConfigProblem(`${shown(raw)} is not one of ${values.join(', ')}`);
        }
        return raw as T;
      },
    };
  },

  /** A connection URL. Never echoed back: it usually carries a password. */
  url(name: string, opts: { protocols: readonly string[]; optional: true }): ConfigField<string | undefined> {
    return {
      env: name,
      parse(raw) {
        if (raw === undefined) return undefined;
        let url: URL;
        try {
          url = new URL(raw);
        } catch {
          throw new ConfigProblem(`${shown(raw, true)} is not a URL; expected ${opts.protocols[0]}//user:password@host:port/database`);
        }
        if (!opts.protocols.includes(url.protocol)) {
          throw new ConfigProblem(`has scheme ${url.protocol} but must be one of ${opts.protocols.join(', ')}`);
        }
        return raw;
      },
    };
  },

  /** Comma-separated host:port pairs, e.g. KAFKA_BROKERS. */
  hostPorts(name: string): ConfigField<string[] | undefined> {
    return {
      env: name,
      parse(raw) {
        if (raw === undefined) return undefined;
        const parts = raw.split(',').map((p) => p.trim()).filter(Boolean);
        const bad = parts.filter((p) => !/^[A-Za-z0-9.\-[\]:]+:\d{1,5}$/.test(p));
        if (parts.length === 0 || bad.length > 0) {
          throw new ConfigProblem(`${shown(raw)} is not a comma-separated list of host:port (bad: ${bad.join(', ') || 'empty'})`);
        }
        return parts;
      },
    };
  },
};
