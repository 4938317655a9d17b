import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EventLogError, EventLogErrorCode, verifyChain, type AppendReceipt, type EventLog, type LogRecord } from '@tracegate/events';
import { createLogger } from '@tracegate/runtime';
import { pollUntil } from '@tracegate/test-harness';
import { EventSessionRecorder } from './event-session-recorder.js';
import type { StatementContext, StatementDecision } from './ports.js';

/** The event log port in memory: records each append call, or refuses them all. */
class MemoryLog implements Pick<EventLog, 'append'> {
  readonly appends: LogRecord[][] = [];
  failing = false;
  async append(records: readonly LogRecord[]): Promise<AppendReceipt[]> {
    if (this.failing) throw new EventLogError(EventLogErrorCode.Unavailable, 'the event log is down');
    this.appends.push([...records]);
    return records.map((r, i) => ({ topic: r.topic, key: r.key, eventId: r.event.id, position: String(i) }));
  }
}

const statement: StatementContext = {
  identity: { id: 'i', name: 'agent', kind: 'agent', groups: [] },
  target: 'billing',
  text: 'SELECT 1',
  fingerprint: 'f',
  parsed: true,
  inMultiStatement: false,
  protocol: 'simple',
};
const allow: StatementDecision = { effect: 'allow', rule: 'r', reason: '', policyVersion: 'v', maskingProfile: '' };
const logger = createLogger('test', 'silent');
const completion = { commandTag: 'SELECT 1', rows: 1, durationMs: 1, sqlstate: '', errorMessage: '', executed: true };

describe('session recorder', () => {
  it('strict: a statement is recorded before the call returns, and a log failure fails the call', async () => {
    const log = new MemoryLog();
    const recorder = new EventSessionRecorder(log as unknown as EventLog, logger, 'strict');
    await recorder.statementRequested('s1', 'st1', statement, allow, 0);
    assert.deepEqual(log.appends.map((a) => a.map((r) => r.event.type)), [['dev.tracegate.session.statement_requested.v1', 'dev.tracegate.session.statement_decided.v1']]);
    log.failing = true;
    await assert.rejects(recorder.statementRequested('s1', 'st2', statement, allow, 0), EventLogError);
  });

  it('async: the call returns without waiting, and a failed write is counted', async () => {
    const log = new MemoryLog();
    log.failing = true;
    const recorder = new EventSessionRecorder(log as unknown as EventLog, logger, 'async');
    await recorder.statementRequested('s1', 'st1', statement, allow, 0);
    await new Promise((r) => setImmediate(r));
    assert.equal(recorder.unrecordedWrites, 1);
  });

  it('sends a completion with the next durable write, in the order things happened, as one chain', async () => {
    const log = new MemoryLog();
    const recorder = new EventSessionRecorder(log as unknown as EventLog, logger, 'strict', 60_000);
    await recorder.statementRequested('s1', 'st1', statement, allow, 0);
    recorder.statementCompleted('s1', 'st1', completion);
    assert.equal(log.appends.length, 1, 'the completion waits');
    await recorder.statementRequested('s1', 'st2', statement, allow, 0);
    assert.equal(log.appends.length, 2);
    assert.deepEqual(log.appends[1]!.map((r) => r.event.type.split('.')[3]), ['statement_completed', 'statement_requested', 'statement_decided']);
    assert.deepEqual(verifyChain(log.appends.flat().map((r) => r.event)), []);
  });

  it('flushes a waiting completion when the session goes quiet', async () => {
    const log = new MemoryLog();
    const recorder = new EventSessionRecorder(log as unknown as EventLog, logger, 'strict', 5);
    await recorder.statementRequested('s1', 'st1', statement, allow, 0);
    recorder.statementCompleted('s1', 'st1', completion);
    await pollUntil(() => log.appends.length === 2, { description: 'the completion to be flushed on its own' });
    assert.equal(log.appends[1]![0]!.event.type, 'dev.tracegate.session.statement_completed.v1');
  });
});
