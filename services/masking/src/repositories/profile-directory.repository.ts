import { readdirSync, readFileSync, watch, type FSWatcher } from 'node:fs';
import { join } from 'node:path';
import { parseProfileDocument, type LoadedProfile } from '../domain/profile-document.js';
import { MaskingError, MaskingErrorCode } from '../domain/masking-error.js';

/** One file of the profiles directory: its profile, or why it was refused. */
export type ProfileFile = { readonly file: string; readonly profile: LoadedProfile } | { readonly file: string; readonly error: MaskingError };

/** Reads every *.yaml / *.yml file of the directory, in name order; a bad file does not stop the others. */
export function readProfileDirectory(directory: string): ProfileFile[] {
  let names: string[];
  try {
    names = readdirSync(directory).filter((n) => /\.ya?ml$/.test(n) && !n.startsWith('.')).sort();
  } catch (error) {
    throw new MaskingError(
      MaskingErrorCode.ProfilesUnreadable,
      `the masking profiles directory ${directory} cannot be read (${(error as NodeJS.ErrnoException).code ?? String(error)}); the profiles in force stay`,
      { cause: error },
    );
  }
  return names.map((name) => {
    const file = join(directory, name);
    try {
      return { file, profile: parseProfileDocument(readFileSync(file, 'utf8'), file) };
    } catch (error) {
      if (error instanceof MaskingError) return { file, error };
      const reason = (error as NodeJS.ErrnoException).code ?? String(error);
      return { file, error: new MaskingError(MaskingErrorCode.ProfilesUnreadable, `masking profile ${file} cannot be read (${reason})`, { cause: error }) };
    }
  });
}

/**
 * Calls back when the directory's content may have changed. Editors and config-map updates
 * replace files (rename), so the directory is watched, and a burst of events settles first.
 */
export class ProfileDirectoryWatcher {
  private watcher: FSWatcher | undefined;
  private pending: NodeJS.Timeout | undefined;

  watch(directory: string, onChange: () => void): void {
    this.watcher = watch(directory, () => {
      clearTimeout(this.pending);
      this.pending = setTimeout(onChange, 100);
    });
    this.watcher.on('error', () => this.close());
  }

  close(): void {
    clearTimeout(this.pending);
    this.watcher?.close();
    this.watcher = undefined;
  }
}
