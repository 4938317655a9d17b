import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { status as GrpcStatus } from '@grpc/grpc-js';
import { BrokerError, BrokerErrorCode, grpcStatusOf, toGrpcError } from './errors.js';

describe('broker errors', () => {
  it('maps every code to a gRPC status', () => {
    const expected: Record<BrokerErrorCode, GrpcStatus> = {
      [BrokerErrorCode.TargetNotFound]: GrpcStatus.NOT_FOUND,
      [BrokerErrorCode.TargetExists]: GrpcStatus.ALREADY_EXISTS,
      [BrokerErrorCode.KeyNotFound]: GrpcStatus.NOT_FOUND,
      [BrokerErrorCode.KeyExists]: GrpcStatus.ALREADY_EXISTS,
      [BrokerErrorCode.KeyRevoked]: GrpcStatus.FAILED_PRECONDITION,
      [BrokerErrorCode.SshKeyNotFound]: GrpcStatus.NOT_FOUND,
      [BrokerErrorCode.SshKeyExists]: GrpcStatus.ALREADY_EXISTS,
      [BrokerErrorCode.LeaseNotFound]: GrpcStatus.NOT_FOUND,
      [BrokerErrorCode.InvalidArgument]: GrpcStatus.INVALID_ARGUMENT,
      [BrokerErrorCode.Unauthenticated]: GrpcStatus.UNAUTHENTICATED,
      [BrokerErrorCode.DecryptionFailed]: GrpcStatus.INTERNAL,
      [BrokerErrorCode.EventLogUnavailable]: GrpcStatus.UNAVAILABLE,
    };
    for (const code of Object.values(BrokerErrorCode)) assert.equal(grpcStatusOf(code), expected[code], code);
  });

  it('keeps a BrokerError sentence and says what to do', () => {
    assert.deepEqual(toGrpcError(BrokerError.targetNotFound('billing')), {
      code: GrpcStatus.NOT_FOUND,
      message: "target 'billing' is not registered; run `tracegate target add billing …` to register it, or `tracegate target list` to see the registered ones",
    });
    assert.deepEqual(toGrpcError(BrokerError.invalidArgument('target.port', '0 is not a port from 1 to 65535')), {
      code: GrpcStatus.INVALID_ARGUMENT,
      message: 'target.port 0 is not a port from 1 to 65535',
    });
  });

  it('hides the text of any other error, which may carry internals', () => {
    const mapped = toGrpcError(new Error('duplicate key value violates unique constraint; password=hunter2'));
    assert.equal(mapped.code, GrpcStatus.INTERNAL);
    assert.doesNotMatch(mapped.message, /hunter2|constraint/);
  });
});
