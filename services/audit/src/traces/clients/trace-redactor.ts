import { compileProfile, DEFAULT_PROFILE, type CompiledMaskingProfile } from '@tracegate/masking-engine';

/** Masks the free text of a trace before it is stored or emitted. */
export interface TraceRedactor {
  /** The texts with every secret and sensitive value replaced, in the same order. */
  redact(texts: readonly string[]): Promise<string[]>;
  close(): void;
}

export const TRACE_REDACTOR = Symbol('TRACE_REDACTOR');

/** The masking profile traces are masked with. */
export const TRACE_MASKING_PROFILE = 'default';

/**
 * The masking engine in this process (libs/masking) with the built-in 'default' profile: every
 * detector over free text. No network hop, so a trace is never stored unmasked because the
 * masking service was away.
 */
export class EngineRedactor implements TraceRedactor {
  private readonly profile: CompiledMaskingProfile;

  constructor(hashKey: Buffer) {
    this.profile = compileProfile(DEFAULT_PROFILE, { hashKey });
  }

  redact(texts: readonly string[]): Promise<string[]> {
    return Promise.resolve(texts.map((text) => (text === '' ? '' : this.profile.redactText(text).text)));
  }

  close(): void {}
}
