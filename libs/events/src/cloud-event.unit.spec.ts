import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  GENESIS,
  GENESIS_HASH,
  canonicalJson,
  cloudEventProblems,
  hashOf,
  headOf,
  sealEvent,
  verifyChain,
  type ChainHead,
  type CloudEvent,
} from './cloud-event.js';

const SESSION = '0190f0c2-6d3a-7c4e-9a51-3b1f2a7e9d10';

/** Three events of one session, with fixed ids and times so the test is repeatable. */
function sessionHistory(): CloudEvent[] {
  const drafts: { id: string; type: string; data: Record<string, unknown> }[] = [
    { id: '0190f0c2-0001-7000-8000-000000000001', type: 'dev.tracegate.session.started.v1', data: { identity: 'agent-7', target: 'billing' } },
    { id: '0190f0c2-0002-7000-8000-000000000002', type: 'dev.tracegate.session.statement_requested.v1', data: { text: 'SELECT 1', params: [] } },
    { id: '0190f0c2-0003-7000-8000-000000000003', type: 'dev.tracegate.session.ended.v1', data: { reason: 'client closed' } },
  ];
  let head: ChainHead = GENESIS;
  return drafts.map((draft, i) => {
    const event = sealEvent({ ...draft, subject: SESSION, source: '/tracegate/gateway', time: new Date(Date.UTC(2025, 0, 1, 12, 0, i)) }, head);
    head = headOf(event);
    return event;
  });
}

describe('CloudEvent envelope and hash chain', () => {
  it('seals a chain that verifies, also after a trip through JSON', () => {
    const events = sessionHistory();
    const [first, second, third] = events;
    assert.ok(first && second && third);
    assert.deepEqual(events.map((e) => e.sequence), [1, 2, 3]);
    assert.equal(first.prevhash, GENESIS_HASH);
    assert.equal(second.prevhash, first.hash);
    assert.equal(third.prevhash, second.hash);
    assert.match(first.hash, /^[0-9a-f]{64}$/);
    assert.equal(first.time, '2025-01-01T12:00:00.000Z');
    for (const event of events) assert.deepEqual(cloudEventProblems(event), []);
    assert.deepEqual(verifyChain(events), []);

    const readBack = JSON.parse(JSON.stringify(events)) as CloudEvent[];
    assert.deepEqual(verifyChain(readBack), []);
    // A consumer that starts mid-chain verifies from the last head it trusts.
    assert.deepEqual(verifyChain([third], headOf(second)), []);
  });

  it('hashes the same whatever order a serialiser gave the keys', () => {
    const [first] = sessionHistory();
    assert.ok(first);
    const shuffled = JSON.parse(
      `{"data":{"target":"billing","identity":"agent-7"},"hash":"${first.hash}","type":"${first.type}","subject":"${first.subject}","id":"${first.id}",` +
        `"source":"${first.source}","time":"${first.time}","datacontenttype":"application/json","sequence":1,"prevhash":"${first.prevhash}","specversion":"1.0"}`,
    ) as CloudEvent;
    assert.equal(hashOf(shuffled), first.hash);
  });

  it('names the altered event when its data was changed', () => {
    const events = sessionHistory();
    const altered = { ...events[1]!, data: { text: 'DROP TABLE invoices', params: [] } };
    assert.deepEqual(verifyChain([events[0]!, altered, events[2]!]), [
      `event ${altered.id} (sequence 2) was altered: its content no longer matches its hash`,
    ]);
  });

  it('names the break when an attribute other than data was changed', () => {
    const events = sessionHistory();
    const moved = { ...events[0]!, subject: 'another-session' };
    assert.deepEqual(verifyChain([moved, events[1]!, events[2]!]), [
      `event ${moved.id} (sequence 1) was altered: its content no longer matches its hash`,
    ]);
  });

  it('names the gap and the broken link when an event was dropped', () => {
    const [first, second, third] = sessionHistory();
    assert.ok(first && second && third);
    assert.deepEqual(verifyChain([first, third]), [
      `event ${third.id} of ${SESSION} has sequence 3 where 2 was expected: an event is missing, repeated or out of order`,
      `event ${third.id} (sequence 3) links to ${second.hash.slice(0, 12)}… but the event before it hashes to ${first.hash.slice(0, 12)}…: the history before it was changed`,
    ]);
  });

  it('names every misplaced event when two were swapped', () => {
    const [first, second, third] = sessionHistory();
    assert.ok(first && second && third);
    assert.deepEqual(verifyChain([first, third, second]), [
      `event ${third.id} of ${SESSION} has sequence 3 where 2 was expected: an event is missing, repeated or out of order`,
      `event ${third.id} (sequence 3) links to ${second.hash.slice(0, 12)}… but the event before it hashes to ${first.hash.slice(0, 12)}…: the history before it was changed`,
      `event ${second.id} of ${SESSION} has sequence 2 where 4 was expected: an event is missing, repeated or out of order`,
      `event ${second.id} (sequence 2) links to ${first.hash.slice(0, 12)}… but the event before it hashes to ${third.hash.slice(0, 12)}…: the history before it was changed`,
    ]);
  });

  it('names a repeated event', () => {
    const [first, second] = sessionHistory();
    assert.ok(first && second);
    assert.deepEqual(verifyChain([first, second, second]), [
      `event ${second.id} of ${SESSION} has sequence 2 where 3 was expected: an event is missing, repeated or out of order`,
      `event ${second.id} (sequence 2) links to ${first.hash.slice(0, 12)}… but the event before it hashes to ${second.hash.slice(0, 12)}…: the history before it was changed`,
    ]);
  });

  it('hashes data the way JSON carries it, so dates survive the trip through the log', () => {
    const event = sealEvent(
      { type: 'dev.tracegate.session.started.v1', subject: SESSION, source: '/tracegate/gateway', data: { at: new Date(Date.UTC(2025, 5, 1)) } },
      GENESIS,
    );
    const readBack = JSON.parse(JSON.stringify(event)) as CloudEvent;
    assert.deepEqual(readBack.data, { at: '2025-06-01T00:00:00.000Z' });
    assert.deepEqual(verifyChain([readBack]), []);
  });

  it('refuses to seal an event with a malformed type or no subject', () => {
    assert.throws(
      () => sealEvent({ type: 'session.started', subject: SESSION, source: '/tracegate/gateway', data: {} }, GENESIS),
      /event type 'session.started' is not of the form dev.tracegate.<aggregate>.<event>.v<N>/,
    );
    assert.throws(
      () => sealEvent({ type: 'dev.tracegate.session.started.v1', subject: '', source: '/tracegate/gateway', data: {} }, GENESIS),
      /event dev.tracegate.session.started.v1 has no subject/,
    );
  });

  it('lists what is wrong with an envelope read from elsewhere', () => {
    assert.deepEqual(cloudEventProblems('not an object'), ['a CloudEvent must be a JSON object']);
    const [first] = sessionHistory();
    const broken = { ...first!, specversion: '0.3', type: 'session.started', time: 'yesterday', sequence: 0, hash: '', Extra_Attr: 1 };
    assert.deepEqual(cloudEventProblems(broken), [
      `specversion must be '1.0', got "0.3"`,
      `attribute 'hash' must be a non-empty string`,
      `type 'session.started' is not dev.tracegate.<aggregate>.<event>.v<N>`,
      `time 'yesterday' is not an RFC 3339 timestamp`,
      'sequence must be a positive integer',
      `attribute name 'Extra_Attr' is not a valid CloudEvents attribute name`,
    ]);
  });
});

describe('canonicalJson', () => {
  it('sorts object keys at every depth and keeps array order', () => {
    assert.equal(
      canonicalJson({ b: 1, a: { d: [{ z: 1, y: 2 }, 3], c: null }, 'é': 'x' }),
      '{"a":{"c":null,"d":[{"y":2,"z":1},3]},"b":1,"é":"x"}',
    );
  });

  it('produces the same text for the same value built in different orders', () => {
    const one = { identity: 'agent-7', target: { name: 'billing', port: 5432 } };
    const other = { target: { port: 5432, name: 'billing' }, identity: 'agent-7' };
    assert.equal(canonicalJson(one), canonicalJson(other));
  });

  it('drops what JSON drops and refuses what JSON cannot carry', () => {
    assert.equal(canonicalJson({ a: undefined, b: 2, c: () => 1 }), '{"b":2}');
    assert.equal(canonicalJson([undefined, 1]), '[null,1]');
    assert.equal(canonicalJson('quote " and \\'), JSON.stringify('quote " and \\'));
    assert.throws(() => canonicalJson({ n: Number.NaN }), /NaN or Infinity/);
  });

  it('agrees with JSON.stringify on values that have a toJSON method', () => {
    const at = new Date(Date.UTC(2025, 0, 2, 3, 4, 5));
    assert.equal(canonicalJson({ at }), JSON.stringify({ at }));
  });
});
