import { maskingV1, SERVICE_PROTOS } from '@tracegate/contracts';
import { compileProfile, DEFAULT_PROFILE, type CompiledMaskingProfile, type MaskingProfileSpec, type MaskingStrategy } from '@tracegate/masking-engine';
import { grpcClient, INTERNAL_TOKEN_METADATA, type Logger, type PromiseClient } from '@tracegate/runtime';
import type { MaskingProfiles } from '../postgres/ports.js';

const STRATEGY: Partial<Record<maskingV1.Strategy, MaskingStrategy>> = {
  [maskingV1.Strategy.STRATEGY_REDACT]: 'redact',
  [maskingV1.Strategy.STRATEGY_PARTIAL]: 'partial',
  [maskingV1.Strategy.STRATEGY_HASH]: 'hash',
  [maskingV1.Strategy.STRATEGY_NULL]: 'null',
  [maskingV1.Strategy.STRATEGY_FORMAT_PRESERVING]: 'format-preserving',
};

/**
 * The masking profiles in force, as the masking service pushes them (WatchProfiles), compiled
 * here once per version so rows are masked in-process. The built-in `default` profile is always
 * there, so statements that name it are masked even before the service answers; a profile the
 * service never pushed is unknown, and a statement naming it is refused, not run unmasked.
 */
export class MaskingProfileFeed implements MaskingProfiles {
  private readonly profiles = new Map<string, CompiledMaskingProfile>();
  private readonly masking: PromiseClient<maskingV1.MaskingServiceClient>;
  private stopped = false;
  private cancel: (() => void) | undefined;

  constructor(
    address: string,
    internalToken: string,
    private readonly hashKey: Buffer,
    private readonly logger: Logger,
    private readonly retryMs = 1000,
  ) {
    this.masking = grpcClient<maskingV1.MaskingServiceClient>(SERVICE_PROTOS.masking.files[0], 'tracegate.masking.v1.MaskingService', address, {
      metadata: { [INTERNAL_TOKEN_METADATA]: internalToken },
    });
    this.install([DEFAULT_PROFILE]);
  }

  profile(name: string): CompiledMaskingProfile | undefined {
    return this.profiles.get(name);
  }

  start(): void {
    if (this.stopped) return;
    const stream = this.masking.stream<maskingV1.WatchProfilesResponse>('watchProfiles', {});
    let lost = false;
    const reconnect = (why: string) => {
      if (lost || this.stopped) return;
      lost = true;
      this.logger.info({ err: why }, 'masking profile feed lost; the profiles in force stay, reconnecting');
      setTimeout(() => this.start(), this.retryMs).unref();
    };
    stream.on('data', (message: maskingV1.WatchProfilesResponse) => this.install(message.profiles.map(specOf)));
    stream.on('error', (error: Error) => reconnect(error.message));
    stream.on('end', () => reconnect('the stream ended'));
    this.cancel = () => stream.cancel();
  }

  stop(): void {
    this.stopped = true;
    this.cancel?.();
    this.masking.close();
  }

  private install(specs: readonly MaskingProfileSpec[]): void {
    for (const spec of specs) {
      if (this.profiles.get(spec.name)?.version === spec.version) continue;
      try {
        this.profiles.set(spec.name, compileProfile(spec, { hashKey: this.hashKey }));
        this.logger.info({ profile: spec.name, version: spec.version }, 'masking profile in force');
      } catch (error) {
        // The service validates before it pushes; should a profile still not compile here, the
        // version already in force stays (or none, and statements naming it are refused).
        this.logger.error({ profile: spec.name, version: spec.version, err: (error as Error).message }, 'masking profile could not be compiled; keeping the previous version');
      }
    }
  }
}

function specOf(profile: maskingV1.MaskingProfile): MaskingProfileSpec {
  return {
    name: profile.name,
    version: profile.version,
    rules: profile.rules.map((rule) => ({
      name: rule.name,
      strategy: STRATEGY[rule.strategy] ?? 'redact',
      ...(rule.column ? { column: rule.column } : {}),
      ...(rule.columnPattern ? { columnPattern: rule.columnPattern } : {}),
      ...(rule.jsonPath ? { jsonPath: rule.jsonPath } : {}),
      ...(rule.detector ? { detector: rule.detector } : {}),
      ...(rule.keepLast ? { keepLast: rule.keepLast } : {}),
    })),
  };
}
