// Runs the masking engine off the audit service's event loop: masking a 1 MiB trace takes about
// 0.3 s of CPU, and ResolveTrace calls (on the gateway's statement path) must not wait behind it.
import { parentPort, workerData } from 'node:worker_threads';
import { compileProfile, DEFAULT_PROFILE } from '@tracegate/masking-engine';

export interface RedactionJob {
  readonly id: number;
  readonly texts: readonly string[];
}

export type RedactionResult = { readonly id: number; readonly texts: string[] } | { readonly id: number; readonly error: string };

const profile = compileProfile(DEFAULT_PROFILE, { hashKey: Buffer.from((workerData as { hashKey: Uint8Array }).hashKey) });

parentPort!.on('message', (job: RedactionJob) => {
  let result: RedactionResult;
  try {
    result = { id: job.id, texts: job.texts.map((text) => (text === '' ? '' : profile.redactText(text).text)) };
  } catch (error) {
    result = { id: job.id, error: (error as Error).message };
  }
  parentPort!.postMessage(result);
});
