import { brokerV1 } from '@tracegate/contracts';
import { BrokerError, assertUnreachable } from '../errors.js';
import type { ApiKeyEntity } from '../entities/api-key.entity.js';
import type { TargetEntity } from '../entities/target.entity.js';

const { TargetType, TlsMode, IdentityKind } = brokerV1;

export function targetTypeOf(type: brokerV1.TargetType): TargetEntity['type'] {
  switch (type) {
    case TargetType.TARGET_TYPE_POSTGRES:
      return 'postgres';
    case TargetType.TARGET_TYPE_SSH:
      return 'ssh';
    case TargetType.TARGET_TYPE_UNSPECIFIED:
    case TargetType.UNRECOGNIZED:
      throw BrokerError.invalidArgument('target.type', 'is required: postgres or ssh');
    default:
      return assertUnreachable(type);
  }
}

export function targetTypeFrom(type: TargetEntity['type']): brokerV1.TargetType {
  return type === 'postgres' ? TargetType.TARGET_TYPE_POSTGRES : TargetType.TARGET_TYPE_SSH;
}

/** An unspecified TLS mode is stored as `require`: encrypted unless the operator says otherwise. */
export function tlsModeOf(tls: brokerV1.TlsMode): NonNullable<TargetEntity['tlsMode']> {
  switch (tls) {
    case TlsMode.TLS_MODE_DISABLE:
      return 'disable';
    case TlsMode.TLS_MODE_UNSPECIFIED:
    case TlsMode.TLS_MODE_REQUIRE:
      return 'require';
    case TlsMode.TLS_MODE_VERIFY_FULL:
      return 'verify-full';
    case TlsMode.UNRECOGNIZED:
      throw BrokerError.invalidArgument('target.tls', 'is not one of disable, require, verify-full');
    default:
      return assertUnreachable(tls);
  }
}

export function tlsModeFrom(tls: TargetEntity['tlsMode']): brokerV1.TlsMode {
  switch (tls) {
    case null:
      return TlsMode.TLS_MODE_UNSPECIFIED;
    case 'disable':
      return TlsMode.TLS_MODE_DISABLE;
    case 'require':
      return TlsMode.TLS_MODE_REQUIRE;
    case 'verify-full':
      return TlsMode.TLS_MODE_VERIFY_FULL;
    default:
      return assertUnreachable(tls);
  }
}

export function identityKindOf(kind: brokerV1.IdentityKind): ApiKeyEntity['kind'] {
  switch (kind) {
    case IdentityKind.IDENTITY_KIND_AGENT:
      return 'agent';
    case IdentityKind.IDENTITY_KIND_HUMAN:
      return 'human';
    case IdentityKind.IDENTITY_KIND_SERVICE:
      return 'service';
    case IdentityKind.IDENTITY_KIND_UNSPECIFIED:
    case IdentityKind.UNRECOGNIZED:
      throw BrokerError.invalidArgument('kind', 'is required: agent, human or service');
    default:
      return assertUnreachable(kind);
  }
}

export function identityKindFrom(kind: ApiKeyEntity['kind']): brokerV1.IdentityKind {
  switch (kind) {
    case 'agent':
      return IdentityKind.IDENTITY_KIND_AGENT;
    case 'human':
      return IdentityKind.IDENTITY_KIND_HUMAN;
    case 'service':
      return IdentityKind.IDENTITY_KIND_SERVICE;
    default:
      return assertUnreachable(kind);
  }
}

export { timestampOf } from '@tracegate/contracts';
