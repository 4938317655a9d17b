import type { maskingV1 } from '@tracegate/contracts';
import { compileProfile, type CompiledMaskingProfile } from './compiled-profile.js';
import { MaskingProfileError } from './profile.js';
import { profileFromProto } from './proto-mapping.js';

export interface ProfileSetUpdate {
  /** Profiles compiled anew (new, or a new version). */
  readonly compiled: readonly string[];
  readonly removed: readonly string[];
  /** Profiles that did not compile; the previous version of each, if any, stays. */
  readonly refused: readonly { readonly name: string; readonly reason: string }[];
}

/**
 * The profiles in force on the consuming side of WatchProfiles (the gateway): each pushed set
 * replaces the last; a profile whose version did not change keeps its compiled form (and its
 * lineage cache), so a push costs only the profiles that changed. A profile that does not compile
 * (a newer service's rule this engine does not know) keeps its previous version rather than
 * masking less.
 */
export class CompiledProfileSet {
  private profiles = new Map<string, CompiledMaskingProfile>();

  constructor(private readonly hashKey: Buffer) {}

  profile(name: string): CompiledMaskingProfile | undefined {
    return this.profiles.get(name);
  }

  names(): string[] {
    return [...this.profiles.keys()].sort();
  }

  update(message: maskingV1.WatchProfilesResponse): ProfileSetUpdate {
    const next = new Map<string, CompiledMaskingProfile>();
    const compiled: string[] = [];
    const refused: { name: string; reason: string }[] = [];
    for (const pushed of message.profiles) {
      const current = this.profiles.get(pushed.name);
      if (current && current.version === pushed.version) {
        next.set(pushed.name, current);
        continue;
      }
      try {
        next.set(pushed.name, compileProfile(profileFromProto(pushed), { hashKey: this.hashKey }));
        compiled.push(pushed.name);
      } catch (error) {
        if (!(error instanceof MaskingProfileError)) throw error;
        refused.push({ name: pushed.name, reason: error.message });
        if (current) next.set(pushed.name, current);
      }
    }
    const removed = [...this.profiles.keys()].filter((name) => !next.has(name));
    this.profiles = next;
    return { compiled, removed, refused };
  }
}
