import { policyV1 } from '@tracegate/contracts';
import type { Effect, IdentityKindName } from '../domain/policy-document.js';
import type { CommandProtocol, DecisionInput, RuleEvaluation, StatementDecision } from '../domain/policy-engine.js';
import { PolicyError, PolicyErrorCode, assertUnreachable } from '../domain/policy-error.js';
import { analyseShellCommand } from '../domain/shell-analysis.js';
import { analyseStatement, type StatementAnalysis } from '../domain/sql-analysis.js';

const { IdentityKind, Protocol, Effect: ProtoEffect } = policyV1;

function invalid(message: string): PolicyError {
  return new PolicyError(PolicyErrorCode.InvalidRequest, message);
}

function identityKindOf(kind: policyV1.IdentityKind): IdentityKindName {
  switch (kind) {
    case IdentityKind.IDENTITY_KIND_AGENT:
      return 'agent';
    case IdentityKind.IDENTITY_KIND_HUMAN:
      return 'human';
    case IdentityKind.IDENTITY_KIND_SERVICE:
      return 'service';
    case IdentityKind.IDENTITY_KIND_UNSPECIFIED:
    case IdentityKind.UNRECOGNIZED:
      throw invalid('identity.kind is required: agent, human or service; a decision depends on who is asking');
    default:
      return assertUnreachable(kind);
  }
}

/** The command of a request, after checking the request has what a decision needs. */
export function commandOf(request: policyV1.DecideRequest | undefined): { protocol: CommandProtocol; text: string } {
  if (!request?.identity) throw invalid('identity is required: say who runs the statement (id, kind and groups)');
  if (!request.command) throw invalid('command is required: give the protocol and the statement text');
  let protocol: CommandProtocol;
  switch (request.command.protocol) {
    case Protocol.PROTOCOL_POSTGRES:
      protocol = 'postgres';
      break;
    case Protocol.PROTOCOL_SSH:
      protocol = 'ssh';
      break;
    case Protocol.PROTOCOL_UNSPECIFIED:
    case Protocol.UNRECOGNIZED:
      throw invalid('command.protocol is required: PROTOCOL_POSTGRES for SQL statements, PROTOCOL_SSH for shell commands');
    default:
      return assertUnreachable(request.command.protocol);
  }
  if (request.command.text.trim() === '') throw invalid(`command.text is empty: send the ${protocol === 'ssh' ? 'shell command' : 'statement'} to decide`);
  return { protocol, text: request.command.text };
}

/** What the command does: SQL through libpg_query, a shell command line through mvdan/sh. */
export function analyseCommand(command: { protocol: CommandProtocol; text: string }): StatementAnalysis {
  return command.protocol === 'ssh' ? analyseShellCommand(command.text) : analyseStatement(command.text);
}

export function decisionInputOf(request: policyV1.DecideRequest, statement: StatementAnalysis, now: Date): DecisionInput {
  const identity = request.identity!;
  if (identity.id.trim() === '') throw invalid('identity.id is required: decisions are recorded against who asked');
  const trace = request.trace;
  if (trace?.present && !(trace.confidence >= 0 && trace.confidence <= 1)) {
    throw invalid(`trace.confidence is ${trace.confidence}; send a number from 0 to 1`);
  }
  return {
    identity: { id: identity.id, kind: identityKindOf(identity.kind), groups: identity.groups },
    target: { name: request.target?.name ?? '', type: request.target?.type ?? '', labels: request.target?.labels ?? {} },
    statement,
    command: {
      protocol: request.command!.protocol === Protocol.PROTOCOL_SSH ? 'ssh' : 'postgres',
      text: request.command!.text,
      multiStatement: request.command!.inMultiStatement,
    },
    // A trace that is not present has nothing to say: its fields read as empty.
    trace: trace?.present ? { present: true, confidence: trace.confidence, model: trace.model, tags: trace.tags } : { present: false, confidence: 0, model: '', tags: [] },
    time: now,
    session: request.sessionAttributes ?? {},
  };
}

function effectOf(effect: Effect): policyV1.Effect {
  switch (effect) {
    case 'allow':
      return ProtoEffect.EFFECT_ALLOW;
    case 'deny':
      return ProtoEffect.EFFECT_DENY;
    case 'review':
      return ProtoEffect.EFFECT_REVIEW;
    default:
      return assertUnreachable(effect);
  }
}

export function statementAnalysisMessage(statement: StatementAnalysis): policyV1.StatementAnalysis {
  return {
    kind: statement.kind,
    opaque: statement.opaque,
    opaqueReason: statement.opaqueReason,
    reads: [...statement.reads],
    writes: [...statement.writes],
    functions: [...statement.functions],
    ...(statement.hasWhere !== undefined && { hasWhere: statement.hasWhere }),
    flags: [...statement.flags],
  };
}

export function decideResponseOf(decision: StatementDecision, statement: StatementAnalysis, policyVersion: string): policyV1.DecideResponse {
  return {
    effect: effectOf(decision.effect),
    rule: decision.rule,
    reason: decision.reason,
    maskingProfile: decision.maskingProfile,
    review: decision.review
      ? { reviewerGroup: decision.review.group, quorum: decision.review.quorum, timeoutSeconds: decision.review.timeoutSeconds }
      : undefined,
    policyVersion,
    dependsOn: [...decision.dependsOn],
    statement: statementAnalysisMessage(statement),
  };
}

export function ruleEvaluationMessage(evaluation: RuleEvaluation): policyV1.RuleEvaluation {
  return { ...evaluation };
}
