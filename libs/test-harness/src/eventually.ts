import { setTimeout as sleep } from 'node:timers/promises';

export interface EventuallyOptions {
  /** How long to keep trying. Generous by default: a slow CI machine must not fail a correct test. */
  readonly timeoutMs?: number;
  /** Pause between attempts. */
  readonly intervalMs?: number;
  /** What is being waited for, for the failure message. */
  readonly description?: string;
}

const DEFAULT_TIMEOUT_MS = 30_000;
const DEFAULT_INTERVAL_MS = 20;

/**
 * Calls `probe` until it returns something other than `undefined`, `null` or `false`, and resolves
 * with that value. Rejects after the timeout, naming what was awaited. Errors thrown by `probe`
 * end the wait at once: use {@link expectEventually} to retry failing assertions.
 */
export async function pollUntil<T>(
  probe: () => T | undefined | null | false | Promise<T | undefined | null | false>,
  options: EventuallyOptions = {},
): Promise<T> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const intervalMs = options.intervalMs ?? DEFAULT_INTERVAL_MS;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== null && value !== false) return value;
    if (Date.now() >= deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${options.description ?? 'a condition'}`);
    }
    await sleep(intervalMs);
  }
}

/**
 * Runs `assertion` until it stops throwing. On timeout rethrows the assertion's last error, so the
 * test fails with the real difference (expected versus actual), not only "timed out".
 */
export async function expectEventually(
  assertion: () => void | Promise<void>,
  options: EventuallyOptions = {},
): Promise<void> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const intervalMs = options.intervalMs ?? DEFAULT_INTERVAL_MS;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await assertion();
      return;
    } catch (error) {
      if (Date.now() >= deadline) {
        const what = options.description ? ` waiting for ${options.description}` : '';
        if (error instanceof Error) {
          const original = error.message;
          error.message = `still failing after ${timeoutMs} ms${what}: ${original}`;
          if (error.stack && original) error.stack = error.stack.replace(original, error.message);
          throw error;
        }
        throw new Error(`still failing after ${timeoutMs} ms${what}: ${String(error)}`, { cause: error });
      }
    }
    await sleep(intervalMs);
  }
}
