import { status as GrpcStatus, type ServiceError } from '@grpc/grpc-js';
import { brokerV1, SERVICE_PROTOS } from '@tracegate/contracts';
import { grpcClient, INTERNAL_TOKEN_METADATA, type PromiseClient } from '@tracegate/runtime';
import type { Reviewer } from '../domain/approval.js';
import { ApprovalError, ApprovalErrorCode } from '../errors.js';

/** The metadata key a reviewer's own API key travels in (the CLI sends TRACEGATE_API_KEY there). */
export const API_KEY_METADATA = 'x-tracegate-api-key';

const KINDS: Record<number, Reviewer['kind'] | undefined> = {
  [brokerV1.IdentityKind.IDENTITY_KIND_AGENT]: 'agent',
  [brokerV1.IdentityKind.IDENTITY_KIND_HUMAN]: 'human',
  [brokerV1.IdentityKind.IDENTITY_KIND_SERVICE]: 'service',
};

/** `tg_<key id>_<random>`: the key id names the key without revealing it. */
const API_KEY = /^tg_([0-9a-f]{32})_[A-Za-z0-9_-]{43}$/;

const BAD_KEY = `the API key in '${API_KEY_METADATA}' (TRACEGATE_API_KEY) is not an active tracegate key; check it, or ask an operator for one (\`tracegate key create --name <you> --kind human --group <reviewer group>\`)`;

/**
 * Who reviewers are: tracegate identities, i.e. the broker's API keys. Reached over gRPC with the
 * internal token, like every service-to-service call.
 */
export class ReviewerDirectory {
  private readonly identity: PromiseClient<brokerV1.IdentityServiceClient>;

  constructor(
    private readonly address: string,
    internalToken: string,
  ) {
    this.identity = grpcClient<brokerV1.IdentityServiceClient>(SERVICE_PROTOS.broker.files[0], 'tracegate.broker.v1.IdentityService', address, {
      metadata: { [INTERNAL_TOKEN_METADATA]: internalToken },
      deadlineMs: 10_000,
    });
  }

  /** The identity an API key belongs to. The broker's Authenticate needs the key's name, found by its key id. */
  async authenticate(apiKey: string): Promise<Reviewer> {
    const keyId = API_KEY.exec(apiKey)?.[1];
    if (!keyId) throw new ApprovalError(ApprovalErrorCode.Unauthenticated, BAD_KEY);
    const listed = (await this.keys()).find((k) => k.id === keyId);
    if (!listed) throw new ApprovalError(ApprovalErrorCode.Unauthenticated, BAD_KEY);
    try {
      const { key } = await this.identity.authenticate({ name: listed.name, secret: apiKey });
      const reviewer = key ? reviewerOf(key) : undefined;
      if (!reviewer) throw new ApprovalError(ApprovalErrorCode.Unauthenticated, BAD_KEY);
      return reviewer;
    } catch (error) {
      if ((error as ServiceError).code === GrpcStatus.UNAUTHENTICATED) throw new ApprovalError(ApprovalErrorCode.Unauthenticated, BAD_KEY);
      throw this.unreachable(error);
    }
  }

  /** An active identity by id or name (callers holding the internal token say who decides). */
  async find(idOrName: string): Promise<Reviewer | undefined> {
    const key = (await this.keys()).find((k) => (k.id === idOrName || k.name === idOrName) && !k.revokedAt);
    return key ? reviewerOf(key) : undefined;
  }

  close(): void {
    this.identity.close();
  }

  private async keys(): Promise<brokerV1.ApiKey[]> {
    try {
      return (await this.identity.listKeys({})).keys;
    } catch (error) {
      throw this.unreachable(error);
    }
  }

  private unreachable(error: unknown): unknown {
    if (error instanceof ApprovalError) return error;
    const code = (error as Partial<ServiceError>).code;
    if (typeof code !== 'number') return error;
    return new ApprovalError(
      ApprovalErrorCode.IdentityServiceUnavailable,
      `cannot check reviewers with the broker at ${this.address} (${GrpcStatus[code] ?? code}); nothing was decided, try again once the broker is up (TRACEGATE_BROKER_ADDRESS says where it is)`,
      { cause: error },
    );
  }
}

function reviewerOf(key: brokerV1.ApiKey): Reviewer | undefined {
  const kind = KINDS[key.kind];
  if (!kind) return undefined;
  return { id: key.id, name: key.name, kind, groups: [...key.groups] };
}
