import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { GroupCommitter } from './group-commit.js';

/**
 * A write the test completes by hand: each call waits until the test resolves or fails it, so
 * the test decides what is in flight when later submits arrive.
 */
class ManualWrites {
  readonly calls: { items: string[]; succeed(): void; fail(error: Error): void }[] = [];
  private arrived: (() => void) | undefined;

  readonly write = (items: string[]): Promise<string[]> =>
    new Promise<string[]>((resolve, reject) => {
      this.calls.push({ items: [...items], succeed: () => resolve(items.map((item) => `ack:${item}`)), fail: reject });
      this.arrived?.();
    });

  /** Resolves once the n-th write (1-based) has been called. */
  async called(n: number): Promise<ManualWrites['calls'][number]> {
    while (this.calls.length < n) await new Promise<void>((resolve) => (this.arrived = resolve));
    return this.calls[n - 1]!;
  }
}

function settledState<T>(promise: Promise<T>): { readonly settled: boolean } {
  const state = { settled: false };
  promise.then(
    () => (state.settled = true),
    () => (state.settled = true),
  );
  return state;
}

describe('GroupCommitter', () => {
  it('puts submits made in the same tick into one write', async () => {
    const writes = new ManualWrites();
    const committer = new GroupCommitter(writes.write);
    const results = [committer.submit(['a']), committer.submit(['b']), committer.submit(['c'])];
    (await writes.called(1)).succeed();
    assert.deepEqual(await Promise.all(results), [['ack:a'], ['ack:b'], ['ack:c']]);
    assert.deepEqual(writes.calls.map((c) => c.items), [['a', 'b', 'c']]);
    assert.equal(committer.writeCount, 1);
  });

  it('gathers submits that arrive during a write into the next write, and answers each caller with its own records', async () => {
    const writes = new ManualWrites();
    const committer = new GroupCommitter(writes.write);
    const first = committer.submit(['a']);
    const firstWrite = await writes.called(1);
    const second = committer.submit(['b1', 'b2']);
    const third = committer.submit(['c']);
    const fourth = committer.submit(['d1', 'd2', 'd3']);
    firstWrite.succeed();
    assert.deepEqual(await first, ['ack:a']);
    (await writes.called(2)).succeed();
    assert.deepEqual(await second, ['ack:b1', 'ack:b2']);
    assert.deepEqual(await third, ['ack:c']);
    assert.deepEqual(await fourth, ['ack:d1', 'ack:d2', 'ack:d3']);
    assert.deepEqual(writes.calls.map((c) => c.items), [['a'], ['b1', 'b2', 'c', 'd1', 'd2', 'd3']]);
    assert.equal(committer.writeCount, 2);
  });

  it('rejects only the callers whose write failed', async () => {
    const writes = new ManualWrites();
    const committer = new GroupCommitter(writes.write);
    const first = committer.submit(['a']);
    const second = committer.submit(['b']);
    const firstWrite = await writes.called(1);
    const third = committer.submit(['c']);
    firstWrite.fail(new Error('disk full'));
    await assert.rejects(first, /disk full/);
    await assert.rejects(second, /disk full/);
    (await writes.called(2)).succeed();
    assert.deepEqual(await third, ['ack:c']);
  });

  it('never puts more than maxItemsPerWrite records in one write, and never splits one submit', async () => {
    const written: string[][] = [];
    const committer = new GroupCommitter(async (items: string[]) => {
      written.push([...items]);
      return items;
    }, 3);
    await Promise.all([
      committer.submit(['a']),
      committer.submit(['b', 'c']),
      committer.submit(['d', 'e']),
      committer.submit(['f', 'g', 'h', 'i']),
      committer.submit(['j']),
    ]);
    assert.deepEqual(written, [['a', 'b', 'c'], ['d', 'e'], ['f', 'g', 'h', 'i'], ['j']]);
  });

  it('rejects the callers of a write that answered for the wrong number of records', async () => {
    const committer = new GroupCommitter(async (items: string[]) => items.slice(1));
    const first = committer.submit(['a']);
    const second = committer.submit(['b']);
    await assert.rejects(first, /returned 1 results for 2 records/);
    await assert.rejects(second, /returned 1 results for 2 records/);
  });

  it('answers an empty submit without writing', async () => {
    const writes = new ManualWrites();
    const committer = new GroupCommitter(writes.write);
    assert.deepEqual(await committer.submit([]), []);
    assert.equal(committer.writeCount, 0);
    assert.equal(writes.calls.length, 0);
  });

  it('drain() resolves only when every submit so far is written or failed', async () => {
    const writes = new ManualWrites();
    const committer = new GroupCommitter(writes.write);
    const first = committer.submit(['a']);
    const firstWrite = await writes.called(1);
    const second = committer.submit(['b']);
    const drained = committer.drain();
    const drainState = settledState(drained);
    const secondState = settledState(second);

    firstWrite.succeed();
    await first;
    const secondWrite = await writes.called(2);
    assert.equal(drainState.settled, false, 'drain() waits for the write still in flight');
    secondWrite.fail(new Error('connection lost'));
    await drained;
    assert.equal(secondState.settled, true, 'when drain() resolves, the last submit has its answer');
    await assert.rejects(second, /connection lost/);
    await committer.drain(); // nothing pending: resolves at once
  });
});
