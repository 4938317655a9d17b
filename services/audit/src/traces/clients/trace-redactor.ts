import { Worker } from 'node:worker_threads';
import { compileProfile, DEFAULT_PROFILE } from '@tracegate/masking-engine';
import type { RedactionJob, RedactionResult } from './redaction-worker.js';

/** Masks the free text of a trace before it is stored or emitted. */
export interface TraceRedactor {
  /** The texts with every secret and sensitive value replaced, in the same order. */
  redact(texts: readonly string[]): Promise<string[]>;
  close(): void;
}

export const TRACE_REDACTOR = Symbol('TRACE_REDACTOR');

/**
 * The masking engine (libs/masking) with the built-in 'default' profile, every detector over free
 * text, in a worker thread of this process: no network hop, so a trace is never left unmasked
 * because the masking service was away, and no long masking blocks the service's other calls.
 */
export class EngineRedactor implements TraceRedactor {
  private worker: Worker | undefined;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (texts: string[]) => void; reject: (error: Error) => void }>();

  constructor(private readonly hashKey: Buffer) {
    // Compiled here too, so a bad key or profile stops start-up instead of the first Submit.
    compileProfile(DEFAULT_PROFILE, { hashKey });
  }

  redact(texts: readonly string[]): Promise<string[]> {
    if (texts.every((t) => t === '')) return Promise.resolve([...texts]);
    const worker = this.ensureWorker();
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      worker.postMessage({ id, texts } satisfies RedactionJob);
    });
  }

  close(): void {
    const worker = this.worker;
    this.worker = undefined;
    void worker?.terminate();
    this.failAll(new Error('the trace redactor was closed'));
  }

  private ensureWorker(): Worker {
    if (this.worker) return this.worker;
    const worker = new Worker(new URL('./redaction-worker.js', import.meta.url), { workerData: { hashKey: new Uint8Array(this.hashKey) } });
    worker.on('message', (result: RedactionResult) => {
      const job = this.pending.get(result.id);
      if (!job) return;
      this.pending.delete(result.id);
      if ('error' in result) job.reject(new Error(result.error));
      else job.resolve(result.texts);
    });
    // A worker that dies fails what it held; the next trace starts a new one.
    const lost = (error: Error) => {
      if (this.worker === worker) this.worker = undefined;
      this.failAll(error);
    };
    worker.on('error', lost);
    worker.on('exit', (code) => lost(new Error(`the masking worker exited with code ${code}`)));
    worker.unref();
    this.worker = worker;
    return worker;
  }

  private failAll(error: Error): void {
    for (const job of this.pending.values()) job.reject(error);
    this.pending.clear();
  }
}
