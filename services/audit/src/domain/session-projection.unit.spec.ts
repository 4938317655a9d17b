import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { CloudEvent } from '@tracegate/events';
import { sessionEventOf, type SessionEvent } from './session-events.js';
import { GatewaySessionScript } from './session-events.testing.js';
import { EMPTY_SLICE, evolve, type SessionRecord, type StatementRecord } from './session-projection.js';

/** An in-memory projection: evolve applied slice by slice, as the repository does with rows. */
class Projection {
  readonly sessions = new Map<string, SessionRecord>();
  readonly statements = new Map<string, StatementRecord>();

  apply(event: CloudEvent): void {
    const e = decoded(event);
    const key = 'statementId' in e ? `${e.sessionId}/${e.statementId}` : undefined;
    const after = evolve({ session: this.sessions.get(e.sessionId), statement: key ? this.statements.get(key) : undefined }, e);
    if (after.session) this.sessions.set(e.sessionId, after.session);
    if (after.statement && key) this.statements.set(key, after.statement);
  }

  statementsOf(sessionId: string): StatementRecord[] {
    return [...this.statements.values()].filter((s) => s.sessionId === sessionId).sort((a, b) => a.sequence - b.sequence);
  }
}

function decoded(event: CloudEvent): SessionEvent {
  const e = sessionEventOf(event);
  assert.ok(e, `${event.type} is a session event`);
  return e;
}

function given(script: GatewaySessionScript): Projection {
  const projection = new Projection();
  for (const event of script.events) projection.apply(event);
  return projection;
}

describe('session projection: evolve', () => {
  it('given nothing, when a session starts, then the session has the identity, target, client and lease, and no statements', () => {
    const script = new GatewaySessionScript('s1').started({ identityName: 'ci-agent', target: 'billing', applicationName: 'psql', clientAddress: '10.0.3.7:51422' });
    const session = given(script).sessions.get('s1');
    assert.deepEqual(session, {
      id: 's1',
      identityId: 'key-ci',
      identityName: 'ci-agent',
      identityKind: 'agent',
      identityGroups: ['readers'],
      target: 'billing',
      clientAddress: '10.0.3.7:51422',
      applicationName: 'psql',
      protocol: 'postgres',
      credentialLeaseId: '019a9d7e-0000-7000-8000-000000000001',
      startedAt: new Date(script.events[0]!.time),
      endedAt: null,
      endReason: '',
      statementCount: 0,
      lastSequence: 1,
    });
  });

  it('given a started session, when statements are requested, decided and completed, then they are numbered in request order with their decision and outcome', () => {
    const script = new GatewaySessionScript('s1')
      .started()
      .requested('a', 'SELECT 1')
      .requested('b', 'DELETE FROM invoices', { effect: 'deny', rule: 'no-deletes', reason: 'deleting invoices is not allowed' })
      .completed('a', { commandTag: 'SELECT 1', rows: 1 })
      .completed('b', { sqlstate: '42501', errorMessage: 'deleting invoices is not allowed' });
    const projection = given(script);
    const [a, b] = projection.statementsOf('s1');
    assert.equal(projection.sessions.get('s1')!.statementCount, 2);
    assert.equal(projection.sessions.get('s1')!.lastSequence, 7);
    assert.deepEqual(
      { sequence: a!.sequence, text: a!.text, effect: a!.effect, rule: a!.rule, commandTag: a!.commandTag, rows: a!.rows, executed: a!.executed, completed: a!.completedAt !== null },
      { sequence: 1, text: 'SELECT 1', effect: 'allow', rule: 'read-only', commandTag: 'SELECT 1', rows: 1, executed: true, completed: true },
    );
    assert.deepEqual(
      { sequence: b!.sequence, effect: b!.effect, rule: b!.rule, reason: b!.reason, sqlstate: b!.sqlstate, errorMessage: b!.errorMessage },
      { sequence: 2, effect: 'deny', rule: 'no-deletes', reason: 'deleting invoices is not allowed', sqlstate: '42501', errorMessage: 'deleting invoices is not allowed' },
    );
    assert.equal(a!.requestedAt.getTime(), Date.parse(script.events[1]!.time));
    assert.equal(a!.decidedAt!.getTime(), Date.parse(script.events[2]!.time));
  });

  it('given a statement skipped after an earlier error, when its completion arrives, then it is completed but not executed', () => {
    const projection = given(new GatewaySessionScript('s1').started().requested('a', 'SELECT 1').completed('a', { executed: false }));
    const [a] = projection.statementsOf('s1');
    assert.equal(a!.executed, false);
    assert.notEqual(a!.completedAt, null);
  });

  it('given a reviewed statement with a reasoning trace, then it keeps the trace, the approval request and how the review ended', () => {
    const script = new GatewaySessionScript('s1')
      .started()
      .requested('a', 'UPDATE t SET x = 1', { rule: 'agent-writes-reviewed', approvalRequestId: 'req-1', approvalState: 'approved' }, { traceId: 't-1' })
      .requested('b', 'SELECT 1');
    const [a, b] = given(script).statementsOf('s1');
    assert.deepEqual([a!.traceId, a!.approvalRequestId, a!.approvalState], ['t-1', 'req-1', 'approved']);
    assert.deepEqual([b!.traceId, b!.approvalRequestId, b!.approvalState], ['', '', '']);
  });

  it('given a statement with no completion yet, then it has its decision and no outcome', () => {
    const [a] = given(new GatewaySessionScript('s1').started().requested('a', 'SELECT pg_sleep(60)')).statementsOf('s1');
    assert.equal(a!.effect, 'allow');
    assert.equal(a!.completedAt, null);
    assert.equal(a!.commandTag, '');
  });

  it('given an open session, when it ends, then it has its end time and reason', () => {
    const script = new GatewaySessionScript('s1').started().requested('a', 'SELECT 1').completed('a').ended('client terminated');
    const session = given(script).sessions.get('s1')!;
    assert.equal(session.endedAt?.toISOString(), script.events.at(-1)!.time);
    assert.equal(session.endReason, 'client terminated');
    assert.equal(session.statementCount, 1);
  });

  it('given nothing of a session, when one of its statement events arrives first, then the session and statement start from what that event knows', () => {
    const script = new GatewaySessionScript('s1').started().requested('a', 'SELECT 1');
    const projection = new Projection();
    projection.apply(script.events[2]!); // the decision only
    const session = projection.sessions.get('s1')!;
    assert.equal(session.identityName, '');
    assert.equal(session.statementCount, 1);
    assert.equal(session.lastSequence, 3);
    const [a] = projection.statementsOf('s1');
    assert.deepEqual({ sequence: a!.sequence, effect: a!.effect, text: a!.text }, { sequence: 1, effect: 'allow', text: '' });
  });

  it('applying any event a second time changes nothing (evolve is idempotent per event)', () => {
    const script = new GatewaySessionScript('s1')
      .started()
      .requested('a', 'SELECT 1')
      .completed('a', { commandTag: 'SELECT 1', rows: 1 })
      .requested('b', 'SELECT 2')
      .ended();
    const once = given(script);
    const twice = new Projection();
    for (const event of script.events) {
      twice.apply(event);
      twice.apply(event);
    }
    assert.deepEqual(twice.sessions, once.sessions);
    assert.deepEqual(twice.statements, once.statements);
    // And each single step: evolve(evolve(s, e), e) = evolve(s, e).
    let slice = EMPTY_SLICE;
    for (const event of script.events) {
      const e = decoded(event);
      const after = evolve({ session: slice.session, statement: undefined }, e);
      assert.deepEqual(evolve(after, e), after, `${event.type} applied twice`);
      slice = after;
    }
  });
});

describe('session projection: reading events', () => {
  it('does not know types outside dev.tracegate.session.{started,statement_requested,statement_decided,statement_completed,ended}.v1', () => {
    const script = new GatewaySessionScript('s1').started().other('statement_masked', { statementId: 'a' });
    assert.equal(sessionEventOf(script.events[1]!), undefined);
    const v2 = { ...script.events[0]!, type: 'dev.tracegate.session.started.v2' };
    assert.equal(sessionEventOf(v2), undefined);
  });

  it('reads missing or mistyped data fields as their proto3 defaults', () => {
    const script = new GatewaySessionScript('s1').other('statement_completed', { statementId: 'a', rows: 'many', executed: 'yes', durationMs: -4 });
    const e = sessionEventOf(script.events[0]!);
    assert.deepEqual(e && e.kind === 'statement_completed' ? { rows: e.rows, executed: e.executed, durationMs: e.durationMs, commandTag: e.commandTag } : undefined, {
      rows: 0,
      executed: false,
      durationMs: 0,
      commandTag: '',
    });
  });

  it('given a requested statement, when result chunks and its completion arrive, then it has the masked parameters, the columns, the recorded row count and the masking hits; malformed values read as NULL or are left out', () => {
    const script = new GatewaySessionScript('s9')
      .started()
      .requested('q1', 'SELECT id, email FROM customers WHERE region = $1', {}, { protocol: 'extended', parameterCount: 2, parameters: ['<masked:region>', null] })
      .result('q1', 0, [['1', '<email:7f3a>'], ['2', null]], ['id', 'email'])
      .result('q1', 1, [['3', '<email:0d4e>']])
      .other('statement_result', { statementId: 'q1', chunk: 2, rows: [{ values: [{ text: 4 }, 'x'] }, 'not a row'] })
      .completed('q1', { commandTag: 'SELECT 250', rows: 250, masked: { email: 3, 'pii-columns': 1 } });
    const [statement] = given(script).statementsOf('s9');
    assert.deepEqual(statement!.parameters, ['<masked:region>', null]);
    assert.deepEqual(statement!.resultColumns, ['id', 'email'], 'later chunks carry no columns and keep the first chunk\'s');
    assert.equal(statement!.rowsRecorded, 5);
    assert.deepEqual(statement!.masked, { email: 3, 'pii-columns': 1 });
    assert.equal(statement!.rows, 250);
    const malformed = decoded(script.events[5]!);
    assert.deepEqual(malformed.kind === 'statement_result' && [malformed.chunk, malformed.rows], [2, [[null, null], []]]);
  });
});
