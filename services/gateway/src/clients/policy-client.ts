import { policyV1, SERVICE_PROTOS } from '@tracegate/contracts';
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

  constructor(address: string, internalToken: string) {
    this.policy = grpcClient<policyV1.PolicyServiceClient>(SERVICE_PROTOS.policy.files[0], 'tracegate.policy.v1.PolicyService', address, {
      metadata: { [INTERNAL_TOKEN_METADATA]: internalToken },
      deadlineMs: 10_000,
    });
  }

  async decide(statement: StatementContext): Promise<StatementDecision> {
    const ssh = statement.protocol.startsWith('ssh-');
    const response = await this.policy.decide({
      identity: { id: statement.identity.id, kind: KIND[statement.identity.kind], groups: [...statement.identity.groups] },
      target: { name: statement.target, type: ssh ? 'ssh' : 'postgres', labels: { ...statement.targetLabels } },
      command: { protocol: ssh ? policyV1.Protocol.PROTOCOL_SSH : policyV1.Protocol.PROTOCOL_POSTGRES, text: statement.text, fingerprint: statement.fingerprint, inMultiStatement: statement.inMultiStatement },
      trace: statement.trace
        ? { present: true, confidence: statement.trace.confidence, model: statement.trace.model, tags: [...statement.trace.tags] }
        : { present: false, confidence: 0, model: '', tags: [] },
      sessionAttributes: {},
    } as policyV1.DecideRequest);
    // An effect we do not know is never treated as allow.
    const effect = EFFECT[response.effect] ?? 'deny';
    const review = response.review
      ? { reviewerGroup: response.review.reviewerGroup, quorum: Math.max(1, response.review.quorum), timeoutSeconds: response.review.timeoutSeconds }
      : undefined;
    return {
      effect,
      rule: response.rule,
      reason: response.reason || (effect === 'review' ? `rule ${response.rule} holds this statement for approval` : `denied by rule ${response.rule}`),
      policyVersion: response.policyVersion,
      maskingProfile: response.maskingProfile,
      dependsOn: response.dependsOn,
      ...(review ? { review } : {}),
    };
  }

  /** WatchPolicyVersions: a server stream that says which version is in force, now and on every change. */
  watch(onVersion: (version: string) => void, onLost: (error: Error) => void): () => void {
    const stream = this.policy.stream<policyV1.WatchPolicyVersionsResponse>('watchPolicyVersions', {});
    let stopped = false;
    stream.on('data', (message: policyV1.WatchPolicyVersionsResponse) => onVersion(message.version));
    const lost = (error: Error) => {
      if (stopped) return;
      stopped = true;
      onLost(error);
    };
    stream.on('error', lost);
    stream.on('end', () => lost(new Error('the policy version stream ended')));
    return () => {
      stopped = true;
      stream.cancel();
    };
  }

  close(): void {
    this.policy.close();
  }
}
