import { maskingV1, SERVICE_PROTOS } from '@tracegate/contracts';
import { CompiledProfileSet, DEFAULT_PROFILE, profileToProto, type CompiledMaskingProfile } from '@tracegate/masking-engine';
import { grpcClient, INTERNAL_TOKEN_METADATA, type Logger, type PromiseClient } from '@tracegate/runtime';
import type { MaskingProfiles } from '../postgres/ports.js';

/**
 * The masking profiles in force, as the masking service pushes them (WatchProfiles), compiled
 * here once per version so rows are masked in-process. Until the first push the built-in
 * `default` profile is in force, so statements naming it are masked from the start; a profile
 * the service never pushed is unknown, and a statement naming it is refused, not run unmasked.
 * A lost feed keeps the profiles in force and reconnects.
 */
export class MaskingProfileFeed implements MaskingProfiles {
  private readonly profiles: CompiledProfileSet;
  private readonly masking: PromiseClient<maskingV1.MaskingServiceClient>;
  private stopped = false;
  private cancel: (() => void) | undefined;

  constructor(
    address: string,
    internalToken: string,
    hashKey: Buffer,
    private readonly logger: Logger,
    private readonly retryMs = 1000,
  ) {
    this.masking = grpcClient<maskingV1.MaskingServiceClient>(SERVICE_PROTOS.masking.files[0], 'tracegate.masking.v1.MaskingService', address, {
      metadata: { [INTERNAL_TOKEN_METADATA]: internalToken },
    });
    this.profiles = new CompiledProfileSet(hashKey);
    this.install({ profiles: [profileToProto(DEFAULT_PROFILE)] });
  }

  profile(name: string): CompiledMaskingProfile | undefined {
    return this.profiles.profile(name);
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
    stream.on('data', (message: maskingV1.WatchProfilesResponse) => this.install(message));
    stream.on('error', (error: Error) => reconnect(error.message));
    stream.on('end', () => reconnect('the stream ended'));
    this.cancel = () => stream.cancel();
  }

  stop(): void {
    this.stopped = true;
    this.cancel?.();
    this.masking.close();
  }

  private install(message: maskingV1.WatchProfilesResponse): void {
    const { compiled, removed, refused } = this.profiles.update(message);
    if (compiled.length > 0 || removed.length > 0) this.logger.info({ compiled, removed }, 'masking profiles in force');
    // The service validates before it pushes; should one still not compile here, its version in
    // force stays (or none, and statements naming it are refused).
    for (const { name, reason } of refused) this.logger.error({ profile: name, err: reason }, 'masking profile could not be compiled; keeping the previous version');
  }
}
