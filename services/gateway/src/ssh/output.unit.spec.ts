import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { completeUtf8Length, exitTag, OutputLines, Utf8Guard } from './output.js';
import { parseLogin, publicKeyLine } from './ssh-listener.js';
import { takeTracePrefix } from './command-channel.js';

describe('SSH output handling', () => {
  it('finds where a chunk stops on a character boundary', () => {
    const euro = Buffer.from('€', 'utf8'); // three bytes
    assert.equal(completeUtf8Length(Buffer.from('abc')), 3);
    assert.equal(completeUtf8Length(Buffer.concat([Buffer.from('a'), euro.subarray(0, 1)])), 1);
    assert.equal(completeUtf8Length(Buffer.concat([Buffer.from('a'), euro.subarray(0, 2)])), 1);
    assert.equal(completeUtf8Length(Buffer.concat([Buffer.from('a'), euro])), 4);
  });

  it('accepts text split inside a character and refuses bytes that are not UTF-8', () => {
    const guard = new Utf8Guard();
    const text = Buffer.from('naïve €10\n', 'utf8');
    for (let i = 0; i < text.length; i++) assert.equal(guard.accept(text.subarray(i, i + 1)), true, `byte ${i}`);
    assert.equal(guard.end(), true);
    const binary = new Utf8Guard();
    assert.equal(binary.accept(Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0xff, 0xfe])), false);
    const cut = new Utf8Guard();
    assert.equal(cut.accept(Buffer.from([0x61, 0xe2, 0x82])), true);
    assert.equal(cut.end(), false, 'a stream ending inside a character is not text');
  });

  it('records output line by line up to the limit, counting all', () => {
    const lines = new OutputLines(3);
    lines.push('stdout', 'one\ntw');
    lines.push('stderr', 'oops\r\n');
    lines.push('stdout', 'o\nthree\nfour\nfive');
    lines.end();
    assert.deepEqual(lines.take(), [
      ['stdout', 'one'],
      ['stderr', 'oops'],
      ['stdout', 'two'],
    ]);
    assert.equal(lines.total, 6);
    const long = new OutputLines(10);
    long.push('stdout', `${'x'.repeat(5000)}\n`);
    const [row] = long.take();
    assert.match(row![1], /^x{4096}… \(5000 characters\)$/);
  });

  it('names how a command ended', () => {
    assert.equal(exitTag({ code: 0 }), 'exit 0');
    assert.equal(exitTag({ code: 3 }), 'exit 3');
    assert.equal(exitTag({ code: null, signal: 'SIGKILL' }), 'signal KILL');
    assert.equal(exitTag(undefined), 'closed');
  });
});

describe('a trace given with the command', () => {
  it('takes a leading TRACEGATE_TRACE_ID assignment off the command', () => {
    assert.deepEqual(takeTracePrefix('TRACEGATE_TRACE_ID=t-1 df -h'), { command: 'df -h', traceId: 't-1' });
    assert.deepEqual(takeTracePrefix("  TRACEGATE_TRACE_ID='0190-ab' journalctl -n 5"), { command: 'journalctl -n 5', traceId: '0190-ab' });
    assert.deepEqual(takeTracePrefix('TRACEGATE_TRACE_ID="t 2" ls'), { command: 'ls', traceId: 't 2' });
    assert.deepEqual(takeTracePrefix('TRACEGATE_TRACE_ID=t-1'), { command: '', traceId: 't-1' });
  });

  it('leaves anything else alone: later assignments, expansions, other names', () => {
    for (const command of ['df -h', 'FOO=1 TRACEGATE_TRACE_ID=t-1 ls', 'TRACEGATE_TRACE_ID=$(id) ls', 'TRACEGATE_TRACE_ID=a;rm -rf x', 'echo TRACEGATE_TRACE_ID=t-1']) {
      assert.deepEqual(takeTracePrefix(command), { command }, command);
    }
  });
});

describe('SSH login names and keys', () => {
  it('reads <key name>:<target> from the user name', () => {
    assert.deepEqual(parseLogin('agent-1:web-1'), { keyName: 'agent-1', target: 'web-1' });
    assert.deepEqual(parseLogin('ops:team:db'), { keyName: 'ops:team', target: 'db' });
    assert.equal(parseLogin('agent-1'), undefined);
    assert.equal(parseLogin(':web'), undefined);
    assert.equal(parseLogin('agent:'), undefined);
  });

  it('turns a key blob into an OpenSSH line', () => {
    const blob = Buffer.concat([Buffer.from([0, 0, 0, 11]), Buffer.from('ssh-ed25519'), Buffer.from([0, 0, 0, 32]), Buffer.alloc(32, 7)]);
    const line = publicKeyLine(blob)!;
    assert.equal(line, `ssh-ed25519 ${blob.toString('base64')}`);
    assert.equal(publicKeyLine(Buffer.from([0, 0, 1, 0])), undefined);
  });
});
