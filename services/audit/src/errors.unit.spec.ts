import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { status as GrpcStatus } from '@grpc/grpc-js';
import { AuditError, AuditErrorCode, grpcStatusOf, toGrpcError } from './errors.js';

describe('audit errors', () => {
  it('maps every code to a gRPC status', () => {
    const expected: Record<AuditErrorCode, GrpcStatus> = {
      [AuditErrorCode.SessionNotFound]: GrpcStatus.NOT_FOUND,
      [AuditErrorCode.InvalidArgument]: GrpcStatus.INVALID_ARGUMENT,
      [AuditErrorCode.Unauthenticated]: GrpcStatus.UNAUTHENTICATED,
      [AuditErrorCode.NotImplemented]: GrpcStatus.UNIMPLEMENTED,
      [AuditErrorCode.NotFound]: GrpcStatus.NOT_FOUND,
      [AuditErrorCode.PermissionDenied]: GrpcStatus.PERMISSION_DENIED,
      [AuditErrorCode.TooLarge]: GrpcStatus.RESOURCE_EXHAUSTED,
      [AuditErrorCode.Unavailable]: GrpcStatus.UNAVAILABLE,
      [AuditErrorCode.Conflict]: GrpcStatus.FAILED_PRECONDITION,
    };
    for (const code of Object.values(AuditErrorCode)) assert.equal(grpcStatusOf(code), expected[code], code);
  });

  it("keeps an AuditError's sentence and hides any other error's text", () => {
    assert.deepEqual(toGrpcError(AuditError.sessionNotFound('x')), { code: GrpcStatus.NOT_FOUND, message: AuditError.sessionNotFound('x').message });
    const hidden = toGrpcError(new Error('connection to 10.0.0.5 refused, password=hunter2'));
    assert.equal(hidden.code, GrpcStatus.INTERNAL);
    assert.doesNotMatch(hidden.message, /hunter2|10\.0\.0\.5/);
  });
});
