import { createHash } from 'node:crypto';
import { DEFAULT_PROFILE } from '@tracegate/masking-engine';
import type { LoadedProfile } from './profile-document.js';

export const BUILTIN_SOURCE = 'built-in';

/** The built-in profile `default`; a file in the profiles directory with name `default` replaces it. */
export function builtinProfile(): LoadedProfile {
  return { spec: DEFAULT_PROFILE, source: BUILTIN_SOURCE, digest: `sha256:${createHash('sha256').update(JSON.stringify(DEFAULT_PROFILE)).digest('hex')}` };
}
