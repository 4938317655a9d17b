import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BackendFramer, BackendFramingError, BackendType, type BackendFrame } from './backend-framer.js';

function message(type: string, body: Buffer | string): Buffer {
  const bytes = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  const header = Buffer.alloc(5);
  header.write(type, 0, 'latin1');
  header.writeInt32BE(bytes.length + 4, 1);
  return Buffer.concat([header, bytes]);
}

const keepAll = () => true;
const keepCommandComplete = (type: number) => type === BackendType.CommandComplete;

function frame(framer: BackendFramer, chunks: readonly Buffer[]): { type: string; body: string }[] {
  const out: { type: string; body: string }[] = [];
  const collect = (f: BackendFrame) => out.push({ type: String.fromCharCode(f.type), body: f.body.toString('latin1') });
  for (const chunk of chunks) framer.push(chunk, collect);
  return out;
}

describe('backend framer', () => {
  const stream = Buffer.concat([
    message('T', 'row description'),
    message('D', 'x'.repeat(300)),
    message('C', 'SELECT 1\0'),
    message('1', ''),
    message('Z', 'I'),
  ]);

  it('frames messages the same however the bytes are split, every boundary and byte by byte', () => {
    const whole = frame(new BackendFramer(1024, keepAll), [stream]);
    assert.deepEqual(whole.map((f) => f.type), ['T', 'D', 'C', '1', 'Z']);
    assert.equal(whole[1]!.body, 'x'.repeat(300));
    for (let cut = 0; cut <= stream.length; cut += 1) {
      assert.deepEqual(frame(new BackendFramer(1024, keepAll), [stream.subarray(0, cut), stream.subarray(cut)]), whole, `split at ${cut}`);
    }
    const bytes = [...stream].map((b) => Buffer.from([b]));
    assert.deepEqual(frame(new BackendFramer(1024, keepAll), bytes), whole);
  });

  it('delivers skipped bodies empty, in order, once their last byte has passed', () => {
    for (let cut = 0; cut <= stream.length; cut += 1) {
      const frames = frame(new BackendFramer(1024, keepCommandComplete), [stream.subarray(0, cut), stream.subarray(cut)]);
      assert.deepEqual(frames.map((f) => f.type), ['T', 'D', 'C', '1', 'Z'], `split at ${cut}`);
      assert.equal(frames[2]!.body, 'SELECT 1\0');
      if (cut > 5 + 15 + 5 && cut < 5 + 15 + 305) assert.equal(frames[1]!.body, '', 'the row was not reassembled');
    }
  });

  it('holds nothing of a large row it skips, and a kept body only as it arrives', () => {
    const row = message('D', Buffer.alloc(8 * 1024 * 1024, 7));
    const skipping = new BackendFramer(64 * 1024 * 1024, keepCommandComplete);
    const keeping = new BackendFramer(64 * 1024 * 1024, keepAll);
    let delivered = 0;
    for (let offset = 0; offset < row.length; offset += 65536) {
      const chunk = row.subarray(offset, offset + 65536);
      skipping.push(chunk, () => (delivered += 1));
      assert.equal(skipping.bufferedBytes, 0);
      keeping.push(chunk, (f) => assert.equal(f.body.length, 8 * 1024 * 1024));
      assert.ok(keeping.bufferedBytes <= offset + 65536);
    }
    assert.equal(delivered, 1);
    assert.equal(keeping.bufferedBytes, 0);
  });

  it('refuses a length claim over the limit, or under 4, at the header, before any body', () => {
    const huge = Buffer.from([0x44, 0x7f, 0xff, 0xff, 0xff]);
    assert.throws(() => new BackendFramer(1024).push(huge, () => undefined), (e: Error) => e instanceof BackendFramingError && /'D' claiming 2147483647 bytes \(the limit is 1024\)/.test(e.message));
    const split = new BackendFramer(1024);
    split.push(huge.subarray(0, 3), () => undefined);
    assert.throws(() => split.push(huge.subarray(3), () => undefined), BackendFramingError);
    assert.throws(() => new BackendFramer(1024).push(Buffer.from([0x5a, 0, 0, 0, 3]), () => undefined), /claiming 3 bytes/);
    assert.throws(() => new BackendFramer(1024).push(Buffer.from([0x5a, 0xff, 0xff, 0xff, 0xff]), () => undefined), /claiming -1 bytes/);
  });

  it('hands over an incomplete message as the bytes it came in', () => {
    for (let cut = 0; cut <= stream.length; cut += 1) {
      const framer = new BackendFramer(1024, keepAll);
      const seen: BackendFrame[] = [];
      framer.push(stream.subarray(0, cut), (f) => seen.push({ ...f, body: Buffer.from(f.body) }));
      const consumed = seen.reduce((n, f) => n + 5 + f.body.length, 0);
      assert.deepEqual(framer.takeRemainder(), stream.subarray(consumed, cut), `split at ${cut}`);
    }
  });

  /**
   * A relay as the session runs it: passes bytes through untouched, except the messages it
   * rewrites, spliced in at the frame offsets; it withholds an incomplete message it may rewrite.
   */
  function relay(chunks: readonly Buffer[], rewrite: (type: string, body: Buffer) => Buffer | undefined, withholds: (type: string) => boolean): Buffer {
    const framer = new BackendFramer(1024, (type) => withholds(String.fromCharCode(type)));
    const out: Buffer[] = [];
    for (const chunk of chunks) {
      let cursor = 0;
      framer.push(chunk, (f) => {
        const replacement = rewrite(String.fromCharCode(f.type), f.body);
        if (replacement === undefined && !f.withheld) return;
        if (f.start >= 0 && f.start > cursor) out.push(chunk.subarray(cursor, f.start));
        out.push(replacement ?? message(String.fromCharCode(f.type), Buffer.from(f.body)));
        cursor = f.end;
      });
      const pending = framer.pending;
      if (pending && (pending.withheld || (pending.start >= 0 && withholds(String.fromCharCode(pending.type))))) {
        if (pending.start >= 0) out.push(chunk.subarray(cursor, pending.start));
        framer.withholdPending();
      } else {
        out.push(chunk.subarray(cursor));
      }
    }
    return Buffer.concat(out);
  }

  it('splices rewritten messages in at their offsets, however the bytes are split', () => {
    const upper = (type: string, body: Buffer) => (type === 'D' ? message('D', body.toString('latin1').toUpperCase()) : undefined);
    const expected = Buffer.concat([message('T', 'row description'), message('D', 'X'.repeat(300)), message('C', 'SELECT 1\0'), message('1', ''), message('Z', 'I')]);
    assert.deepEqual(relay([stream], upper, (t) => t === 'D'), expected);
    for (let cut = 0; cut <= stream.length; cut += 1) {
      assert.deepEqual(relay([stream.subarray(0, cut), stream.subarray(cut)], upper, (t) => t === 'D'), expected, `split at ${cut}`);
    }
    assert.deepEqual(relay([...stream].map((b) => Buffer.from([b])), upper, (t) => t === 'D'), expected);
  });

  it('relays a withheld message whole when it is not rewritten after all, and drops one rewritten to nothing', () => {
    const keep = () => undefined;
    for (let cut = 0; cut <= stream.length; cut += 1) {
      assert.deepEqual(relay([stream.subarray(0, cut), stream.subarray(cut)], keep, (t) => t === 'D' || t === 'C'), stream, `split at ${cut}`);
    }
    const drop = (type: string) => (type === 'T' ? Buffer.alloc(0) : undefined);
    const expected = stream.subarray(message('T', 'row description').length);
    for (let cut = 0; cut <= stream.length; cut += 1) {
      assert.deepEqual(relay([stream.subarray(0, cut), stream.subarray(cut)], drop, (t) => t === 'T'), expected, `split at ${cut}`);
    }
  });

  it('refuses to withhold a message whose first bytes were already relayed', () => {
    const framer = new BackendFramer(1024, () => false);
    framer.push(stream.subarray(0, 30), () => undefined);
    framer.push(stream.subarray(30, 31), () => undefined);
    assert.throws(() => framer.withholdPending(), /already partly relayed/);
  });
});
