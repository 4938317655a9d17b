import { credentials, loadPackageDefinition, Metadata, type ClientReadableStream } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { PROTO_LOADER_OPTIONS, PROTO_ROOT, policyV1, SERVICE_PROTOS } from '@tracegate/contracts';
import { grpcClient, INTERNAL_TOKEN_METADATA, type PromiseClient } from '@tracegate/runtime';
import type { PolicyVersionSource } from '../postgres/decision-cache.js';
import type { StatementContext, StatementDecision, StatementEffect, StatementJudge } from '../postgres/ports.js';

const KIND: Record<StatementContext['identity']['kind'], policyV1.IdentityKind> = {
  agent: policyV1.IdentityKind.IDENTITY_KIND_AGENT,
  human: policyV1.IdentityKind.IDENTITY_KIND_HUMAN,
  service: policyV1.IdentityKind.IDENTITY_KIND_SERVICE,
};

const EFFECT: Record<number, StatementEffect | undefined> = {
  [policyV1.Effect.EFFECT_ALLOW]: 'allow',
  [policyV1.Effect.EFFECT_DENY]: 'deny',
  [policyV1.Effect.EFFECT_REVIEW]: 'review',
};

/** The policy service over gRPC: one round trip per statement (decision caching comes with the policy work). */
export class PolicyClient implements StatementJudge, PolicyVersionSource {
  private readonly policy: PromiseClient<policyV1.PolicyServiceClient>;

  constructor(
    private readonly address: string,
    private readonly internalToken: string,
  ) {
    this.policy = grpcClient<policyV1.PolicyServiceClient>(SERVICE_PROTOS.policy.files[0], 'tracegate.policy.v1.PolicyService', address, {
      metadata: { [INTERNAL_TOKEN_METADATA]: internalToken },
      deadlineMs: 10_000,
    });
  }

  async decide(statement: StatementContext): Promise<StatementDecision> {
    const response = await this.policy.decide({
      identity: { id: statement.identity.id, kind: KIND[statement.identity.kind], groups: [...statement.identity.groups] },
      target: { name: statement.target, type: 'postgres', labels: {} },
      command: { protocol: policyV1.Protocol.PROTOCOL_POSTGRES, text: statement.text, fingerprint: statement.fingerprint, inMultiStatement: statement.inMultiStatement },
      trace: { present: false, confidence: 0, model: '', tags: [] },
      sessionAttributes: {},
    } as policyV1.DecideRequest);
    // An effect we do not know is never treated as allow.
    const effect = EFFECT[response.effect] ?? 'deny';
    return { effect, rule: response.rule, reason: response.reason || `denied by rule ${response.rule}`, policyVersion: response.policyVersion, maskingProfile: response.maskingProfile };
  }

  /** WatchPolicyVersions: a server stream that says which version is in force, now and on every change. */
  watch(onVersion: (version: string) => void, onLost: (error: Error) => void): () => void {
    const definition = loadPackageDefinition(loadSync(SERVICE_PROTOS.policy.files[0], { ...PROTO_LOADER_OPTIONS, includeDirs: [PROTO_ROOT] }));
    const Service = (definition.tracegate as never as { policy: { v1: { PolicyService: new (a: string, c: unknown) => { watchPolicyVersions(r: object, m: Metadata): ClientReadableStream<policyV1.WatchPolicyVersionsResponse>; close(): void } } } }).policy.v1.PolicyService;
    const client = new Service(this.address, credentials.createInsecure());
    const metadata = new Metadata();
    metadata.set(INTERNAL_TOKEN_METADATA, this.internalToken);
    const stream = client.watchPolicyVersions({}, metadata);
    let stopped = false;
    stream.on('data', (message: policyV1.WatchPolicyVersionsResponse) => onVersion(message.version));
    const lost = (error: Error) => {
      if (stopped) return;
      stopped = true;
      client.close();
      onLost(error);
    };
    stream.on('error', lost);
    stream.on('end', () => lost(new Error('the policy version stream ended')));
    return () => {
      stopped = true;
      stream.cancel();
      client.close();
    };
  }

  close(): void {
    this.policy.close();
  }
}
