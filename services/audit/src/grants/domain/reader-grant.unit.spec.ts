import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decideRead, type ReaderGrantRecord } from './reader-grant.js';

const NOW = new Date('2026-11-22T12:00:00Z');
const hours = (n: number) => new Date(NOW.getTime() + n * 3600_000);

function grant(overrides: Partial<ReaderGrantRecord>): ReaderGrantRecord {
  return { id: 'rg-1', reader: 'auditor', agent: 'billing-bot', target: null, from: null, until: null, expiresAt: hours(1), createdAt: hours(-1), revokedAt: null, reason: 'INC-42', ...overrides };
}

const traceOfBot = { agent: 'billing-bot', target: ['billing'], at: hours(-2), what: 'trace t-1' };

describe('reader grants: who may read what, when', () => {
  it('allows a reader whose live grant names the agent, or one of the targets, with no window', () => {
    const byAgent = decideRead([grant({})], 'auditor', traceOfBot, NOW);
    assert.deepEqual(byAgent, { allowed: true, grant: grant({}) });
    const byTarget = grant({ id: 'rg-2', agent: null, target: 'billing' });
    assert.equal(decideRead([byTarget], 'auditor', { ...traceOfBot, agent: 'other-bot' }, NOW).allowed, true);
  });

  it("never lets one reader use another's grant, or a grant for another agent or target", () => {
    const refused = decideRead([grant({ reader: 'someone-else' }), grant({ agent: 'other-bot' }), grant({ agent: null, target: 'reporting' })], 'auditor', traceOfBot, NOW);
    assert.equal(refused.allowed, false);
    assert.match((refused as { reason: string }).reason, /^identity 'auditor' holds no reader grant for agent 'billing-bot' or target 'billing', so it may not read trace t-1; .*tracegate grants create --reader auditor --agent billing-bot --expires-in 1h/);
  });

  it('refuses an expired grant and says when it expired; a grant is dead at its expiry instant', () => {
    const expired = decideRead([grant({ expiresAt: hours(-0.5) })], 'auditor', traceOfBot, NOW);
    assert.equal(expired.allowed, false);
    assert.match((expired as { reason: string }).reason, /reader grant rg-1 \(identity 'auditor', agent 'billing-bot'\) expired at 2026-11-22T11:30:00\.000Z/);
    assert.equal(decideRead([grant({ expiresAt: NOW })], 'auditor', traceOfBot, NOW).allowed, false);
    assert.equal(decideRead([grant({ expiresAt: new Date(NOW.getTime() + 1) })], 'auditor', traceOfBot, NOW).allowed, true);
  });

  it('refuses a revoked grant, saying it was revoked', () => {
    const revoked = decideRead([grant({ revokedAt: hours(-0.25) })], 'auditor', traceOfBot, NOW);
    assert.match((revoked as { reason: string }).reason, /rg-1 .* was revoked at 2026-11-22T11:45:00\.000Z/);
  });

  it('covers only what was made inside the window, both ends included', () => {
    const windowed = grant({ from: hours(-3), until: hours(-2) });
    assert.equal(decideRead([windowed], 'auditor', { ...traceOfBot, at: hours(-3) }, NOW).allowed, true);
    assert.equal(decideRead([windowed], 'auditor', { ...traceOfBot, at: hours(-2) }, NOW).allowed, true);
    const before = decideRead([windowed], 'auditor', { ...traceOfBot, at: new Date(hours(-3).getTime() - 1) }, NOW);
    assert.match((before as { reason: string }).reason, /covers agent 'billing-bot' from 2026-11-22T09:00:00\.000Z until 2026-11-22T10:00:00\.000Z, but trace t-1 was made at 2026-11-22T08:59:59\.999Z, outside that window/);
    assert.equal(decideRead([grant({ from: hours(-1) })], 'auditor', traceOfBot, NOW).allowed, false);
    assert.equal(decideRead([grant({ until: hours(-3) })], 'auditor', traceOfBot, NOW).allowed, false);
  });

  it('uses a live covering grant when an expired one also matches, and names the longest-lasting one', () => {
    const old = grant({ id: 'rg-old', expiresAt: hours(-1) });
    const short = grant({ id: 'rg-short', expiresAt: hours(1) });
    const long = grant({ id: 'rg-long', agent: null, target: 'billing', expiresAt: hours(5) });
    const decision = decideRead([old, short, long], 'auditor', traceOfBot, NOW);
    assert.equal(decision.allowed && decision.grant.id, 'rg-long');
  });
});
