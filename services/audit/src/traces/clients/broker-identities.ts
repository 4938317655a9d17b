import { status as GrpcStatus, type ServiceError } from '@grpc/grpc-js';
import { brokerV1, SERVICE_PROTOS } from '@tracegate/contracts';
import { grpcClient, INTERNAL_TOKEN_METADATA, type PromiseClient } from '@tracegate/runtime';

/** `tg_<key id>_<random>`: the key id names the key without revealing it. */
const API_KEY = /^tg_([0-9a-f]{32})_[A-Za-z0-9_-]+$/;

export interface ApiKeyIdentity {
  readonly id: string;
  readonly name: string;
}

/** Checks an agent's API key with the broker (IdentityService.Authenticate). */
export class BrokerIdentities {
  private readonly identity: PromiseClient<brokerV1.IdentityServiceClient>;

  constructor(readonly address: string, internalToken: string) {
    this.identity = grpcClient<brokerV1.IdentityServiceClient>(SERVICE_PROTOS.broker.files[0], 'tracegate.broker.v1.IdentityService', address, {
      metadata: { [INTERNAL_TOKEN_METADATA]: internalToken },
      deadlineMs: 5_000,
    });
  }

  /**
   * The identity, or undefined when the name and key do not match a live key. Without a name it is
   * found by the key id the key carries (`tg_<key id>_…`): the broker's Authenticate needs the name.
   * Throws when the broker cannot answer.
   */
  async authenticate(name: string | undefined, apiKey: string): Promise<ApiKeyIdentity | undefined> {
    if (name === undefined) {
      const keyId = API_KEY.exec(apiKey)?.[1];
      if (!keyId) return undefined;
      name = (await this.identity.listKeys({})).keys.find((k) => k.id === keyId && !k.revokedAt)?.name;
      if (!name) return undefined;
    }
    try {
      const { key } = await this.identity.authenticate({ name, secret: apiKey });
      return key ? { id: key.id, name: key.name } : undefined;
    } catch (error) {
      if ((error as ServiceError).code === GrpcStatus.UNAUTHENTICATED) return undefined;
      throw error;
    }
  }

  close(): void {
    this.identity.close();
  }
}
