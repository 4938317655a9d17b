import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CachingJudge, type PolicyVersionSource } from './decision-cache.js';
import type { StatementContext, StatementDecision, StatementJudge } from './ports.js';

class CountingJudge implements StatementJudge {
  calls = 0;
  version = 'v1';
  dependsOn: string[] | undefined;
  async decide(): Promise<StatementDecision> {
    this.calls += 1;
    return { effect: 'allow', rule: 'r', reason: '', policyVersion: this.version, maskingProfile: '', ...(this.dependsOn ? { dependsOn: this.dependsOn } : {}) };
  }
}

class ManualVersions implements PolicyVersionSource {
  onVersion: ((v: string) => void) | undefined;
  onLost: ((e: Error) => void) | undefined;
  watch(onVersion: (v: string) => void, onLost: (e: Error) => void) {
    this.onVersion = onVersion;
    this.onLost = onLost;
    return () => undefined;
  }
}

const statement = (overrides: Partial<StatementContext> = {}): StatementContext => ({
  identity: { id: 'a', name: 'a', kind: 'agent', groups: ['g'] },
  target: 'billing',
  text: 'SELECT 1',
  fingerprint: 'fp1',
  parsed: true,
  inMultiStatement: false,
  protocol: 'simple',
  ...overrides,
});

function setup() {
  const inner = new CountingJudge();
  const versions = new ManualVersions();
  const judge = new CachingJudge(inner, versions, 10, 60_000);
  judge.start();
  return { inner, versions, judge };
}

describe('decision cache', () => {
  it('caches nothing until the policy version feed says which version is in force', async () => {
    const { inner, judge } = setup();
    await judge.decide(statement());
    await judge.decide(statement());
    assert.equal(inner.calls, 2);
  });

  it('answers a repeated statement from the cache under the version in force', async () => {
    const { inner, versions, judge } = setup();
    versions.onVersion!('v1');
    await judge.decide(statement());
    await judge.decide(statement({ text: 'SELECT 2' })); // same fingerprint: constants differ
    assert.equal(inner.calls, 1);
    assert.equal(judge.hits, 1);
  });

  it('keys on identity, target and where the statement stands', async () => {
    const { inner, versions, judge } = setup();
    versions.onVersion!('v1');
    await judge.decide(statement());
    await judge.decide(statement({ identity: { id: 'a', name: 'a', kind: 'agent', groups: ['g', 'dba'] } }));
    await judge.decide(statement({ target: 'crm' }));
    await judge.decide(statement({ inMultiStatement: true }));
    await judge.decide(statement({ protocol: 'extended' }));
    assert.equal(inner.calls, 5);
  });

  it('drops every decision when a new policy version is activated', async () => {
    const { inner, versions, judge } = setup();
    versions.onVersion!('v1');
    await judge.decide(statement());
    inner.version = 'v2';
    versions.onVersion!('v2');
    await judge.decide(statement());
    await judge.decide(statement());
    assert.equal(inner.calls, 2);
  });

  it('stops caching when the version feed is lost, so a change cannot be missed', async () => {
    const { inner, versions, judge } = setup();
    versions.onVersion!('v1');
    await judge.decide(statement());
    versions.onLost!(new Error('gone'));
    await judge.decide(statement());
    await judge.decide(statement());
    assert.equal(inner.calls, 3);
  });

  it('never caches a statement the parser could not read', async () => {
    const { inner, versions, judge } = setup();
    versions.onVersion!('v1');
    await judge.decide(statement({ parsed: false, fingerprint: '' }));
    await judge.decide(statement({ parsed: false, fingerprint: '' }));
    assert.equal(inner.calls, 2);
  });

  it('is bounded', async () => {
    const { inner, versions, judge } = setup();
    versions.onVersion!('v1');
    for (let i = 0; i < 11; i += 1) await judge.decide(statement({ fingerprint: `fp${i}` }));
    await judge.decide(statement({ fingerprint: 'fp0' })); // evicted: the oldest of eleven with room for ten
    assert.equal(inner.calls, 12);
  });

  it('shares a decision across identities when it depended only on the statement', async () => {
    const { inner, versions, judge } = setup();
    versions.onVersion!('v1');
    inner.dependsOn = ['command.fingerprint', 'target.name'];
    await judge.decide(statement());
    await judge.decide(statement({ identity: { id: 'b', name: 'b', kind: 'human', groups: ['dba'] } }));
    assert.equal(inner.calls, 1);
    await judge.decide(statement({ target: 'other' }));
    assert.equal(inner.calls, 2);
  });

  it('keys on the trace features a decision read, and on the exact text when the analysis read a literal', async () => {
    const { inner, versions, judge } = setup();
    versions.onVersion!('v1');
    inner.dependsOn = ['command.fingerprint', 'trace.confidence'];
    const traced = (confidence: number) => statement({ traceId: 't', trace: { confidence, model: 'm', tags: [] } });
    await judge.decide(traced(0.9));
    await judge.decide(traced(0.9));
    assert.equal(inner.calls, 1);
    await judge.decide(traced(0.5));
    await judge.decide(statement());
    assert.equal(inner.calls, 3);
    inner.dependsOn = ['command.text'];
    await judge.decide(statement({ fingerprint: 'fp-set', text: "SELECT set_config('a', '1', false)" }));
    await judge.decide(statement({ fingerprint: 'fp-set', text: "SELECT set_config('role', '1', false)" }));
    assert.equal(inner.calls, 5);
  });

  it('never reuses a decision that read the time or the session', async () => {
    const { inner, versions, judge } = setup();
    versions.onVersion!('v1');
    inner.dependsOn = ['command.fingerprint', 'time.hour'];
    await judge.decide(statement());
    await judge.decide(statement());
    assert.equal(inner.calls, 2);
  });
});
