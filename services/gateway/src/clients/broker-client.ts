import { status as GrpcStatus, type ServiceError } from '@grpc/grpc-js';
import { brokerV1, SERVICE_PROTOS } from '@tracegate/contracts';
import { grpcClient, INTERNAL_TOKEN_METADATA, type PromiseClient } from '@tracegate/runtime';
import type { ClientAuthenticator, CredentialBroker, CredentialLease, VerifiedIdentity } from '../postgres/ports.js';
import type { TargetTls } from '../postgres/upstream-login.js';

const KINDS: Record<number, VerifiedIdentity['kind'] | undefined> = {
  [brokerV1.IdentityKind.IDENTITY_KIND_AGENT]: 'agent',
  [brokerV1.IdentityKind.IDENTITY_KIND_HUMAN]: 'human',
  [brokerV1.IdentityKind.IDENTITY_KIND_SERVICE]: 'service',
};

const TLS: Record<number, TargetTls> = {
  [brokerV1.TlsMode.TLS_MODE_DISABLE]: 'disable',
  [brokerV1.TlsMode.TLS_MODE_REQUIRE]: 'require',
  [brokerV1.TlsMode.TLS_MODE_VERIFY_FULL]: 'verify-full',
};


function identityOf(key: brokerV1.ApiKey | undefined): VerifiedIdentity | undefined {
  const kind = key ? KINDS[key.kind] : undefined;
  if (!key || !kind) return undefined;
  return { id: key.id, name: key.name, kind, groups: key.groups };
}

/** The broker over gRPC: API-key and SSH public-key authentication, and credential leases. */
export class BrokerClient implements ClientAuthenticator, CredentialBroker {
  private readonly identity: PromiseClient<brokerV1.IdentityServiceClient>;
  private readonly credentials: PromiseClient<brokerV1.CredentialServiceClient>;

  constructor(address: string, internalToken: string) {
    const file = SERVICE_PROTOS.broker.files[0];
    const options = { metadata: { [INTERNAL_TOKEN_METADATA]: internalToken }, deadlineMs: 10_000 };
    this.identity = grpcClient<brokerV1.IdentityServiceClient>(file, 'tracegate.broker.v1.IdentityService', address, options);
    this.credentials = grpcClient<brokerV1.CredentialServiceClient>(file, 'tracegate.broker.v1.CredentialService', address, options);
  }

  async authenticate(user: string, password: string): Promise<VerifiedIdentity | undefined> {
    try {
      const { key } = await this.identity.authenticate({ name: user, secret: password });
      return identityOf(key);
    } catch (error) {
      if ((error as ServiceError).code === GrpcStatus.UNAUTHENTICATED) return undefined;
      throw error;
    }
  }

  async authenticatePublicKey(user: string, publicKey: string): Promise<VerifiedIdentity | undefined> {
    try {
      const { key } = await this.identity.authenticatePublicKey({ name: user, publicKey });
      return identityOf(key);
    } catch (error) {
      if ((error as ServiceError).code === GrpcStatus.UNAUTHENTICATED) return undefined;
      throw error;
    }
  }

  async checkout(target: string, sessionId: string, identity: VerifiedIdentity): Promise<CredentialLease> {
    try {
      const lease = await this.credentials.checkoutCredential({ target, sessionId, identityId: identity.id });
      const t = lease.target;
      if (!t) throw new Error(`the broker returned no connection details for target '${target}'`);
      return {
        leaseId: lease.leaseId,
        endpoint: { name: target, host: t.host, port: t.port, database: t.database, user: lease.user, password: lease.secret, tls: TLS[t.tls] ?? 'disable' },
        labels: t.labels,
        ...(t.hostKey ? { hostKey: t.hostKey } : {}),
      };
    } catch (error) {
      if ((error as ServiceError).code === GrpcStatus.NOT_FOUND) {
        throw new Error(`target "${target}" is not registered with tracegate; the database name you connect to is the target name (see \`tracegate target list\`)`);
      }
      throw error;
    }
  }

  async release(leaseId: string): Promise<void> {
    await this.credentials.releaseCredential({ leaseId });
  }

  close(): void {
    this.identity.close();
    this.credentials.close();
  }
}
