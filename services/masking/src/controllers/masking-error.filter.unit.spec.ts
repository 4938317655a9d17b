import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { status as GrpcStatus } from '@grpc/grpc-js';
import { MaskingError, MaskingErrorCode } from '../domain/masking-error.js';
import { grpcStatusOf, toGrpcError } from './masking-error.filter.js';

describe('masking errors as gRPC status', () => {
  it('maps every code', () => {
    for (const code of Object.values(MaskingErrorCode)) assert.equal(typeof grpcStatusOf(code), 'number');
    assert.equal(grpcStatusOf(MaskingErrorCode.ProfileNotFound), GrpcStatus.NOT_FOUND);
    assert.equal(grpcStatusOf(MaskingErrorCode.Unauthenticated), GrpcStatus.UNAUTHENTICATED);
  });
  it('keeps a MaskingError sentence and hides any other error (it may quote the text)', () => {
    assert.deepEqual(toGrpcError(new MaskingError(MaskingErrorCode.InvalidRequest, 'name is required')), { code: GrpcStatus.INVALID_ARGUMENT, message: 'name is required' });
    const hidden = toGrpcError(new Error('failed on 4111 1111 1111 1111'));
    assert.equal(hidden.code, GrpcStatus.INTERNAL);
    assert.doesNotMatch(hidden.message, /4111/);
  });
});
