export * as approvalsV1 from './generated/tracegate/approvals/v1/approvals.js';
export * as auditV1 from './generated/tracegate/audit/v1/audit.js';
export * as brokerV1 from './generated/tracegate/broker/v1/broker.js';
export * as gatewayV1 from './generated/tracegate/gateway/v1/events.js';
export * as maskingV1 from './generated/tracegate/masking/v1/masking.js';
export * as policyV1 from './generated/tracegate/policy/v1/policy.js';
export * as healthV1 from './generated/grpc/health/v1/health.js';
export * from './proto-files.js';
export * from './timestamps.js';
