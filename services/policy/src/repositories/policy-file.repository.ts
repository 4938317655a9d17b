import { watch, readdirSync, readFileSync, type FSWatcher } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { parsePolicyDocument, parsePolicyDocuments, type ActivePolicy } from '../domain/policy-document.js';
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

/** A policy document in a policy directory; `*.tests.yaml` beside it hold its examples. */
export function isPolicyDocumentName(name: string): boolean {
  return /\.ya?ml$/.test(name) && !/\.tests\.ya?ml$/.test(name) && !name.startsWith('.');
}

/** Reads every policy document of a directory, in name order, and validates them as one policy. */
export function readPolicyDirectory(path: string): ActivePolicy {
  let names: string[];
  try {
    names = readdirSync(resolve(path)).filter(isPolicyDocumentName).sort();
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code ?? (error instanceof Error ? error.message : String(error));
    throw new PolicyError(
      PolicyErrorCode.DocumentUnreadable,
      `policy directory ${path} cannot be read (${reason}); point TRACEGATE_POLICY_DIR at a directory of YAML policy documents`,
      { cause: error },
    );
  }
  const documents = names.map((name) => {
    const file = join(path, name);
    try {
      return { source: file, text: readFileSync(resolve(file), 'utf8') };
    } catch (error) {
      const reason = (error as NodeJS.ErrnoException).code ?? String(error);
      throw new PolicyError(PolicyErrorCode.DocumentUnreadable, `policy file ${file} cannot be read (${reason})`, { cause: error });
    }
  });
  return parsePolicyDocuments(documents, path);
}

/** Where the policy comes from: one file, or a directory of documents. */
export type PolicyLocation = { readonly file: string } | { readonly directory: string };

export function readPolicyLocation(location: PolicyLocation): ActivePolicy {
  return 'file' in location ? readPolicyFile(location.file) : readPolicyDirectory(location.directory);
}

/**
 * Calls back when a policy file (or any document of a policy directory) may have changed. It watches the directory, not the file:
 * editors and config-map updates replace the file, which would end a watch on the file itself.
 */
export class PolicyFileWatcher {
  private watcher: FSWatcher | undefined;
  private pending: NodeJS.Timeout | undefined;

  watch(location: PolicyLocation, onChange: () => void): void {
    const full = resolve('file' in location ? location.file : location.directory);
    const name = 'file' in location ? basename(full) : undefined;
    this.watcher = watch('file' in location ? dirname(full) : full, (_event, changed) => {
      const relevant = name === undefined ? changed === null || isPolicyDocumentName(changed) || changed.startsWith('..') : changed === null || changed === name || changed.startsWith('..');
      if (!relevant) return;
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
