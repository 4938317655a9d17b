import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { describeProgress, ProgressLine } from './progress.js';

describe('progress line', () => {
  it('says how many are done, the rate and the time left when the total is known', () => {
    assert.equal(describeProgress(1200, 5000, 0.5, 'events'), '1,200/5,000 events  2,400/s  about 2s left');
    assert.equal(describeProgress(30, undefined, 2, 'statements'), '30 statements  15/s');
    assert.equal(describeProgress(100, 100_000, 1, 'events'), '100/100,000 events  100/s  about 16m39s left');
    assert.equal(describeProgress(5000, 5000, 2, 'events'), '5,000/5,000 events  2,500/s');
  });

  it('draws nothing when output is not a terminal', () => {
    const written: string[] = [];
    const line = new ProgressLine('events', 10, { write: (t: string) => written.push(t) }, false);
    line.update(5);
    line.clear();
    line.finish();
    assert.deepEqual(written, []);
  });

  it('draws over itself on a terminal and wipes itself for ordinary output', () => {
    const written: string[] = [];
    const line = new ProgressLine('events', 10, { write: (t: string) => written.push(t) }, true);
    line.update(5);
    line.clear();
    line.clear();
    assert.equal(written.length, 2);
    assert.match(written[0]!, /^\r\x1b\[2K5\/10 events {2}\d[\d,]*\/s/);
    assert.equal(written[1], '\r\x1b[2K');
  });
});
