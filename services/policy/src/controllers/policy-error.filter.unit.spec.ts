import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { status as GrpcStatus } from '@grpc/grpc-js';
import { PolicyError, PolicyErrorCode } from '../domain/policy-error.js';
import { grpcStatusOf, toGrpcError } from './policy-error.filter.js';

describe('policy errors over gRPC', () => {
  it('maps every code to a status', () => {
    for (const code of Object.values(PolicyErrorCode)) assert.equal(typeof grpcStatusOf(code), 'number', code);
    assert.equal(grpcStatusOf(PolicyErrorCode.InvalidRequest), GrpcStatus.INVALID_ARGUMENT);
    assert.equal(grpcStatusOf(PolicyErrorCode.Unauthenticated), GrpcStatus.UNAUTHENTICATED);
  });

  it('keeps a PolicyError sentence and hides anything else', () => {
    assert.deepEqual(toGrpcError(new PolicyError(PolicyErrorCode.InvalidRequest, 'identity is required')), {
      code: GrpcStatus.INVALID_ARGUMENT,
      message: 'identity is required',
    });
    assert.deepEqual(toGrpcError(new Error('connection to 10.0.0.5 refused')), {
      code: GrpcStatus.INTERNAL,
      message: 'the policy service failed to decide; its log has the details',
    });
  });
});
