import { Inject, Injectable } from '@nestjs/common';
import type { Metadata } from '@grpc/grpc-js';
import { InternalToken, INTERNAL_TOKEN_METADATA, SERVICE_CONTEXT, type ServiceContext } from '@tracegate/runtime';
import { AUDIT_CONFIG, type AuditConfig } from '../../audit.config.js';
import { AuditError, AuditErrorCode } from '../../errors.js';
import { BrokerIdentities, type ApiKeyIdentity } from '../clients/broker-identities.js';

/** gRPC metadata an agent authenticates with: its key's name and the key itself. */
export const IDENTITY_METADATA = 'x-tracegate-identity';
export const API_KEY_METADATA = 'x-tracegate-api-key';

export const BROKER_IDENTITIES = Symbol('BROKER_IDENTITIES');

export type TraceCaller = { readonly kind: 'internal' } | ({ readonly kind: 'identity' } & ApiKeyIdentity);

function single(metadata: Metadata | undefined, key: string): string | undefined {
  const value = metadata?.get(key)[0];
  return typeof value === 'string' && value !== '' ? value : undefined;
}

/**
 * Who is calling TraceService: the gateway (internal token) or an agent (API key, checked by the
 * broker). A call that presents the internal token must present the right one; it never falls
 * back to the API key.
 */
@Injectable()
export class TraceCallers {
  private readonly token: InternalToken;

  constructor(
    @Inject(AUDIT_CONFIG) config: AuditConfig,
    @Inject(BROKER_IDENTITIES) private readonly broker: BrokerIdentities,
    @Inject(SERVICE_CONTEXT) private readonly context: ServiceContext,
  ) {
    this.token = new InternalToken(config.internalToken);
  }

  async identify(metadata: Metadata | undefined): Promise<TraceCaller> {
    if (metadata?.get(INTERNAL_TOKEN_METADATA).length) {
      const problem = this.token.problem(metadata, 'audit');
      if (problem) throw new AuditError(AuditErrorCode.Unauthenticated, problem);
      return { kind: 'internal' };
    }
    // The name is optional: without it the broker's key list names the key by its id.
    const name = single(metadata, IDENTITY_METADATA);
    const apiKey = single(metadata, API_KEY_METADATA);
    if (!apiKey) {
      throw new AuditError(
        AuditErrorCode.Unauthenticated,
        `this call needs an API key in the gRPC metadata '${API_KEY_METADATA}' (and, optionally, its name in '${IDENTITY_METADATA}'); \`tracegate key create\` issues one`,
      );
    }
    let identity: ApiKeyIdentity | undefined;
    try {
      identity = await this.broker.authenticate(name, apiKey);
    } catch (error) {
      // The broker's own message may name internals; the log gets it, the caller a sentence.
      this.context.logger.warn({ err: (error as Error).message, broker: this.broker.address }, 'the broker could not check an API key');
      throw new AuditError(AuditErrorCode.Unavailable, 'the API key could not be checked because the broker did not answer; try again shortly', { cause: error });
    }
    // Never says which half was wrong: that would tell a guesser which names exist.
    if (!identity) {
      const whose = name ? ` for identity '${name.slice(0, 64)}'` : '';
      throw new AuditError(AuditErrorCode.Unauthenticated, `the API key is not valid${whose} (unknown, revoked, or a different key); check TRACEGATE_API_KEY${name ? ' and TRACEGATE_IDENTITY' : ''}`);
    }
    return { kind: 'identity', ...identity };
  }

  /** For RPCs only tracegate's own services call (ResolveTrace). */
  requireInternal(metadata: Metadata | undefined, rpc: string): void {
    if (!metadata?.get(INTERNAL_TOKEN_METADATA).length) {
      throw new AuditError(AuditErrorCode.Unauthenticated, `${rpc} is for tracegate's own services: it needs the internal token in the gRPC metadata '${INTERNAL_TOKEN_METADATA}'`);
    }
    const problem = this.token.problem(metadata, 'audit');
    if (problem) throw new AuditError(AuditErrorCode.Unauthenticated, problem);
  }
}
