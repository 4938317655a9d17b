import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { timestampOf } from '@tracegate/contracts';
import { AuditErrorCode } from '../../errors.js';
import { describeExport, exportScopeOf, refusalOf } from './export-scope.js';

const NOW = new Date('2026-11-22T06:00:00Z');

describe('export scope', () => {
  it('takes since, and until defaulting to now', () => {
    assert.deepEqual(exportScopeOf({ since: timestampOf(new Date('2026-11-01T00:00:00Z')), until: undefined }, NOW), { since: new Date('2026-11-01T00:00:00Z'), until: NOW });
  });

  it('refuses a missing since and an until not after since, naming the field', () => {
    assert.throws(() => exportScopeOf({ since: undefined, until: undefined }, NOW), (e: Error & { code: string }) => e.code === AuditErrorCode.InvalidArgument && /^since is required/.test(e.message));
    const at = timestampOf(new Date('2026-11-01T00:00:00Z'));
    assert.throws(() => exportScopeOf({ since: at, until: at }, NOW), { message: /^until \(2026-11-01T00:00:00.000Z\) must be after since/ });
  });

  it('tells reviewers who exports how many sessions of which window', () => {
    const scope = { since: new Date('2026-11-01T00:00:00Z'), until: NOW };
    assert.equal(
      describeExport(scope, 1, 'dana'),
      'dana exports the audit trail: 1 session started from 2026-11-01T00:00:00.000Z until 2026-11-22T06:00:00.000Z, with their statements, masked parameters and recorded (masked) result rows, as JSON lines',
    );
  });

  it('words each refusal as PERMISSION_DENIED with its reason', () => {
    const denied = refusalOf({ state: 'denied', requestId: 'r1', reason: 'ask legal first', decidedBy: 'bob' }, 'auditors');
    assert.deepEqual([denied.code, denied.message], [AuditErrorCode.PermissionDenied, 'export request r1 was denied by bob: ask legal first; nothing was exported']);
    assert.match(refusalOf({ state: 'expired', requestId: 'r2', reason: '', decidedBy: '' }, 'auditors').message, /^export request r2 expired before a member of 'auditors' approved it/);
    assert.equal(refusalOf({ state: 'withdrawn', requestId: 'r3', reason: 'the requester stopped waiting for the export', decidedBy: 'dana' }, 'auditors').message, 'export request r3 was withdrawn: the requester stopped waiting for the export; nothing was exported');
  });
});
