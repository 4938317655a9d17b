import { policyV1, SERVICE_PROTOS } from '@tracegate/contracts';
import { grpcClient, type PromiseClient } from '@tracegate/runtime';
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
export class PolicyClient implements StatementJudge {
  private readonly policy: PromiseClient<policyV1.PolicyServiceClient>;

  constructor(address: string, internalToken: string) {
    this.policy = grpcClient<policyV1.PolicyServiceClient>(SERVICE_PROTOS.policy.files[0], 'tracegate.policy.v1.PolicyService', address, {
      metadata: { 'x-tracegate-internal-token': internalToken },
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

  close(): void {
    this.policy.close();
  }
}
