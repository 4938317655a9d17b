import { Inject, Injectable, type BeforeApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { BehaviorSubject, Subject, filter, map, takeUntil, type Observable, type Subscription } from 'rxjs';
import type { maskingV1 } from '@tracegate/contracts';
import { compileProfile, profileToProto, type CompiledMaskingProfile } from '@tracegate/masking-engine';
import { HealthState, SERVICE_CONTEXT, type ServiceContext } from '@tracegate/runtime';
import { builtinProfile } from '../domain/builtin-profile.js';
import { MaskingError, MaskingErrorCode } from '../domain/masking-error.js';
import type { LoadedProfile } from '../domain/profile-document.js';
import { MASKING_CONFIG, type MaskingConfig } from '../masking.config.js';
import { Clock } from '../repositories/clock.js';
import { ProfileActivationRepository } from '../repositories/profile-activation.repository.js';
import { ProfileDirectoryWatcher, readProfileDirectory } from '../repositories/profile-directory.repository.js';

export const MASKING_GRPC_SERVICE = 'tracegate.masking.v1.MaskingService';
export const DEFAULT_PROFILE_NAME = 'default';

interface InForce {
  readonly loaded: LoadedProfile;
  readonly compiled: CompiledMaskingProfile;
}

/**
 * The masking profiles in force: the built-in `default`, and one per file of
 * TRACEGATE_MASKING_PROFILES_DIR. A profile is put in force only once its activation is recorded
 * on the event log. A file that changes to something invalid is refused (the log names file,
 * line and column) and that profile's previous version stays; a changed profile must change its
 * version, so a version always names one content.
 */
@Injectable()
export class ProfileRegistry implements OnModuleInit, BeforeApplicationShutdown {
  private readonly inForce$ = new BehaviorSubject<ReadonlyMap<string, InForce> | undefined>(undefined);
  private readonly watcher = new ProfileDirectoryWatcher();
  private reloading: Promise<void> = Promise.resolve();
  private readonly draining$ = new Subject<void>();
  private healthSubscription: Subscription | undefined;

  constructor(
    @Inject(MASKING_CONFIG) private readonly config: MaskingConfig,
    @Inject(SERVICE_CONTEXT) private readonly context: ServiceContext,
    private readonly activations: ProfileActivationRepository,
    private readonly clock: Clock,
    private readonly health: HealthState,
  ) {}

  async onModuleInit(): Promise<void> {
    if (this.config.hashKey.generated) {
      this.context.logger.warn('TRACEGATE_MASKING_HASH_KEY is not set: hash tokens use a key made for this process, so they change at restart and differ from the gateway’s; set it (openssl rand -base64 32) to the same value for both');
    }
    await this.load(true);
    const directory = this.config.profilesDirectory;
    if (directory) this.watcher.watch(directory, () => (this.reloading = this.reloading.then(() => this.load(false))));
    // Feeds end when shutdown begins, or every watching gateway would hold it for the grace period.
    this.healthSubscription = this.health.shuttingDown(MASKING_GRPC_SERVICE)?.subscribe(() => this.draining$.next());
  }

  async beforeApplicationShutdown(): Promise<void> {
    this.healthSubscription?.unsubscribe();
    this.draining$.next();
    this.watcher.close();
    await this.reloading;
  }

  /** Reads the built-in profile and the directory, and puts each changed profile in force. */
  private async load(startup: boolean): Promise<void> {
    const current = this.inForce$.value ?? new Map<string, InForce>();
    const candidates = new Map<string, LoadedProfile>([[DEFAULT_PROFILE_NAME, builtinProfile()]]);
    const directory = this.config.profilesDirectory;
    if (directory) {
      let files: ReturnType<typeof readProfileDirectory>;
      try {
        files = readProfileDirectory(directory);
      } catch (error) {
        if (!(error instanceof MaskingError) || startup) throw error;
        this.context.logger.error(error.message);
        return;
      }
      const fromFile = new Map<string, string>();
      for (const entry of files) {
        if ('error' in entry) {
          // The profile this file held before stays in force, at its previous version.
          const previous = [...current.values()].find((p) => p.loaded.source === entry.file);
          this.context.logger.error(`${entry.error.message}\n${previous ? `masking profile '${previous.loaded.spec.name}' ${previous.loaded.spec.version} stays in force` : 'no profile from this file is in force'}`);
          if (previous) candidates.set(previous.loaded.spec.name, previous.loaded);
          continue;
        }
        const { spec } = entry.profile;
        const other = fromFile.get(spec.name);
        if (other) {
          this.context.logger.error(`masking profile '${spec.name}' is defined in both ${other} and ${entry.file}; ${entry.file} was not loaded (give each profile its own name)`);
          continue;
        }
        fromFile.set(spec.name, entry.file);
        // Before a restart, the version in force is the one last recorded.
        const previous = current.get(spec.name)?.loaded ?? (await this.activations.lastActivated(spec.name));
        if (previous && previous.digest !== entry.profile.digest && previous.spec.version === spec.version) {
          this.context.logger.error(`masking profile '${spec.name}' in ${entry.file} changed but its version '${spec.version}' did not; bump the version (or remove it to version by content). ${spec.version} as it was stays in force`);
          candidates.set(spec.name, previous);
          continue;
        }
        candidates.set(spec.name, entry.profile);
      }
    }
    const next = new Map<string, InForce>();
    let changed = current.size !== candidates.size;
    for (const [name, loaded] of candidates) {
      const previous = current.get(name);
      if (previous && previous.loaded.digest === loaded.digest) {
        next.set(name, previous);
        continue;
      }
      changed = true;
      try {
        const compiled = compileProfile(loaded.spec, { hashKey: this.config.hashKey.key });
        await this.activations.record(loaded, this.clock.now());
        next.set(name, { loaded, compiled });
        this.context.logger.info({ profile: name, version: loaded.spec.version, source: loaded.source, rules: loaded.spec.rules.length }, `masking profile '${name}' ${loaded.spec.version} from ${loaded.source} is in force`);
      } catch (error) {
        if (startup) throw error;
        this.context.logger.error({ err: error }, `masking profile '${name}' ${loaded.spec.version} was not put in force${previous ? `; ${previous.loaded.spec.version} stays` : ''}`);
        if (previous) next.set(name, previous);
      }
    }
    for (const name of current.keys()) if (!candidates.has(name)) this.context.logger.info(`masking profile '${name}' was removed (its file is gone)`);
    if (changed || startup) this.inForce$.next(next);
  }

  private profiles(): ReadonlyMap<string, InForce> {
    const profiles = this.inForce$.value;
    // onModuleInit loads before the gRPC server takes calls.
    if (!profiles) throw new Error('no masking profile is in force yet');
    return profiles;
  }

  private profile(name: string): InForce {
    const profile = this.profiles().get(name);
    if (!profile) {
      throw new MaskingError(
        MaskingErrorCode.ProfileNotFound,
        `masking profile '${name}' is not in force (profiles in force: ${[...this.profiles().keys()].sort().join(', ')}); add it to the profiles directory or name one of these`,
      );
    }
    return profile;
  }

  redact(request: maskingV1.RedactRequest): maskingV1.RedactResponse {
    const name = request.profile.trim() || DEFAULT_PROFILE_NAME;
    const { text, hits } = this.profile(name).compiled.redactText(request.text);
    return { text, hits: Object.entries(hits).map(([detector, count]) => ({ detector, count })) };
  }

  getProfile(request: maskingV1.GetProfileRequest): maskingV1.GetProfileResponse {
    const name = request.name.trim();
    if (!name) throw new MaskingError(MaskingErrorCode.InvalidRequest, 'name is required: say which masking profile to get (e.g. default)');
    return { profile: profileToProto(this.profile(name).loaded.spec) };
  }

  /** Every profile in force now, then the whole set again on every change. */
  watch(): Observable<maskingV1.WatchProfilesResponse> {
    return this.inForce$.pipe(
      takeUntil(this.draining$),
      filter((profiles): profiles is ReadonlyMap<string, InForce> => profiles !== undefined),
      map((profiles) => ({ profiles: [...profiles.values()].map((p) => profileToProto(p.loaded.spec)) })),
    );
  }
}
