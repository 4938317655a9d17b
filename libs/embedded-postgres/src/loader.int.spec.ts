import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadEmbeddedPostgres } from './loader.js';

describe('loadEmbeddedPostgres', () => {
  it('takes back the process signals async-exit-hook grabs, and can be called again', async () => {
    const first = await loadEmbeddedPostgres('tests');
    const second = await loadEmbeddedPostgres('tests');
    assert.equal(first, second);
    const exitHook = (await import('async-exit-hook')).default;
    assert.deepEqual(exitHook.hookedEvents(), [], 'no SIGTERM/SIGINT/beforeExit/exit handler of its own is left');
    for (const signal of ['SIGTERM', 'SIGINT'] as const) assert.equal(process.listenerCount(signal), 0, `${signal} is ours to handle`);
  });
});
