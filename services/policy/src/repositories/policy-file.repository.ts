import { watch, readFileSync, type FSWatcher } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { parsePolicyDocument, type ActivePolicy } from '../domain/policy-document.js';
import { PolicyError, PolicyErrorCode } from '../domain/policy-error.js';

/** Reads and validates a policy file; a file that cannot be read is a PolicyError saying what to do. */
export function readPolicyFile(path: string): ActivePolicy {
  let text: string;
  try {
    text = readFileSync(resolve(path), 'utf8');
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code ?? (error instanceof Error ? error.message : String(error));
    throw new PolicyError(
      PolicyErrorCode.DocumentUnreadable,
      `policy file ${path} cannot be read (${reason}); point TRACEGATE_POLICY_FILE at a readable YAML policy, or unset it to use the built-in policy`,
      { cause: error },
    );
  }
  return parsePolicyDocument(text, path);
}

/**
 * Calls back when a policy file may have changed. It watches the directory, not the file:
 * editors and config-map updates replace the file, which would end a watch on the file itself.
 */
export class PolicyFileWatcher {
  private watcher: FSWatcher | undefined;
  private pending: NodeJS.Timeout | undefined;

  watch(path: string, onChange: () => void): void {
    const full = resolve(path);
    const name = basename(full);
    this.watcher = watch(dirname(full), (_event, changed) => {
      if (changed !== null && changed !== name && !changed.startsWith('..')) return;
      // One write often arrives as several events: settle first.
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
