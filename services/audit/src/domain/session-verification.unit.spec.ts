import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { describe, it } from 'node:test';
import { GENESIS, headOf, sealEvent, type ChainHead, type CloudEvent } from '@tracegate/events';
import { checkpointProblems, signCheckpoint, CHECKPOINT_EVENT_TYPE, CHECKPOINT_SUBJECT } from './checkpoint.js';
import { sessionEventOf } from './session-events.js';
import { GatewaySessionScript } from './session-events.testing.js';
import { evolve, type SessionRecord, type StatementRecord } from './session-projection.js';
import { differingFields, verifySessionEvidence, type SessionEvidence } from './session-verification.js';

const script = new GatewaySessionScript('s1').started().requested('a', 'SELECT 1').completed('a', { commandTag: 'SELECT 1', rows: 1 }).ended();

/** The rows an honest projection holds for these events. */
function projected(events: readonly CloudEvent[]): { session: SessionRecord | undefined; statements: StatementRecord[] } {
  let session: SessionRecord | undefined;
  const statements = new Map<string, StatementRecord>();
  for (const event of events) {
    const e = sessionEventOf(event)!;
    const id = 'statementId' in e ? e.statementId : undefined;
    const after = evolve({ session, statement: id ? statements.get(id) : undefined }, e);
    session = after.session;
    if (after.statement && id) statements.set(id, after.statement);
  }
  return { session, statements: [...statements.values()] };
}

function honest(overrides: Partial<SessionEvidence> = {}): SessionEvidence {
  return { sessionId: 's1', log: script.events, copy: script.events, ...projected(script.events), checkpoints: [], ...overrides };
}

function reseal(events: readonly CloudEvent[], change: (e: CloudEvent) => unknown): CloudEvent[] {
  let head: ChainHead = GENESIS;
  return events.map((e) => {
    const sealed = sealEvent({ type: e.type, subject: e.subject, source: e.source, data: change(e), time: new Date(e.time), id: e.id }, head);
    head = headOf(sealed);
    return sealed;
  });
}

describe('session verification', () => {
  it('finds an honest session intact, counting the events it checked', () => {
    assert.deepEqual(verifySessionEvidence(honest()), { intact: true, eventsChecked: script.events.length, problems: [] });
  });

  it('names a missing event on the log by its sequence and its removal', () => {
    const log = script.events.filter((e) => e.sequence !== 2);
    const { problems } = verifySessionEvidence(honest({ log }));
    assert.ok(problems.some((p) => p.includes('has sequence 3 where 2 was expected')), problems.join('\n'));
    assert.ok(problems.includes(`sequence 2 (event ${script.events[1]!.id}, dev.tracegate.session.statement_requested.v1) was projected but is no longer on the log: it was removed`), problems.join('\n'));
  });

  it("reads the projection's copy when the log cannot be read by key (Kafka), and still finds a changed row", () => {
    const { session, statements } = projected(script.events);
    const { problems } = verifySessionEvidence(honest({ log: undefined, statements: statements.map((s) => ({ ...s, commandTag: 'DELETE 9' })), session }));
    assert.deepEqual(problems, [`statement 1 (id a): commandTag is "DELETE 9" in the projection but "SELECT 1" on the projection's copy of the log`]);
  });

  it('names a row inserted into the projection with no event behind it', () => {
    const { statements } = projected(script.events);
    const forged = { ...statements[0]!, statementId: 'z', sequence: 2 };
    const { problems } = verifySessionEvidence(honest({ statements: [...statements, forged] }));
    assert.deepEqual(problems, ['statement 2 (id z) is in the projection but on no event of the log: the row was inserted']);
  });

  it('catches a rewritten history that is consistent everywhere by the head a checkpoint signed, and a forged checkpoint by its signature', () => {
    const rewritten = reseal(script.events, (e) => (e.sequence === 2 ? { ...(e.data as object), text: 'SELECT 2' } : e.data));
    const signed = script.events.at(-1)!;
    const checkpoint = { checkpointId: 'c1', sequence: signed.sequence, hash: signed.hash, problems: [] };
    const { problems } = verifySessionEvidence({ sessionId: 's1', log: rewritten, copy: rewritten, ...projected(rewritten), checkpoints: [checkpoint] });
    assert.deepEqual(problems, [
      `sequence ${signed.sequence} (event ${signed.id}) hashes to ${rewritten.at(-1)!.hash.slice(0, 12)}… but checkpoint c1 signed ${signed.hash.slice(0, 12)}…: the history was rewritten after it was checkpointed`,
    ]);

    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const data = signCheckpoint({ checkpointId: 'c1', previousCheckpointId: '', keyId: 'k1', signedAt: signed.time, heads: [{ sessionId: 's1', sequence: signed.sequence, hash: signed.hash }] }, privateKey);
    const event = sealEvent({ type: CHECKPOINT_EVENT_TYPE, subject: CHECKPOINT_SUBJECT, source: '/tracegate/audit', data }, GENESIS);
    assert.deepEqual(checkpointProblems(event, publicKey, 'k1'), []);
    const forged = { ...event, data: { ...data, heads: [{ sessionId: 's1', sequence: signed.sequence, hash: rewritten.at(-1)!.hash }] } };
    assert.deepEqual(checkpointProblems(forged, publicKey, 'k1'), ['checkpoint c1 does not verify against checkpoint key k1: the checkpoint was altered or forged']);
    assert.deepEqual(checkpointProblems(event, publicKey, 'k2'), ['checkpoint c1 was signed by key k1, not by this service\'s checkpoint key k2']);
  });

  it('compares leaf by leaf, dates as instants', () => {
    assert.deepEqual(differingFields({ a: { b: 1, c: [1, 2] }, t: new Date(0) }, { a: { b: 2, c: [1, 2] }, t: '1970-01-01T00:00:00.000Z' }), [{ path: 'a.b', was: 1, now: 2 }]);
  });
});
