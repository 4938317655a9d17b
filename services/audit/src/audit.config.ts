import { env, type ConfigField, type ConfigOf } from '@tracegate/runtime';
import { INTEGRITY_CONFIG_SCHEMA } from './integrity.config.js';

export const AUDIT_CONFIG_SCHEMA = {
  ...INTEGRITY_CONFIG_SCHEMA,
  internalToken: env.string('TRACEGATE_INTERNAL_TOKEN', { pattern: /^.{32,}$/, describe: 'a shared secret of at least 32 characters (`openssl rand -base64 32`)', secret: true }),
  /** Largest reasoning trace TraceService.Submit takes (1 MiB); gRPC's own 4 MiB message limit caps it. */
  traceMaxBytes: env.int('TRACEGATE_TRACE_MAX_BYTES', { fallback: 1024 * 1024, min: 1024, max: 4 * 1024 * 1024 - 64 * 1024 }),
  /** Where the broker checks agents' API keys; default 127.0.0.1:<TRACEGATE_BROKER_GRPC_PORT or 7104>. */
  brokerAddress: env.address('TRACEGATE_BROKER_ADDRESS'),
  /**
   * The masking engine's HMAC key (base64, at least 32 bytes), the same variable the masking
   * service reads, so hashed values agree everywhere. Unset, traces are masked under a key
   * derived from the internal token (the built-in profile redacts free text; it hashes nothing).
   */
  maskingHashKey: env.optional(env.string('TRACEGATE_MASKING_HASH_KEY', { pattern: /^[A-Za-z0-9+/_-]{43,}={0,2}$/, describe: 'base64 of at least 32 random bytes (`openssl rand -base64 32`)', secret: true })),
  /** Where exports ask for approval; default 127.0.0.1:<TRACEGATE_APPROVALS_GRPC_PORT or 7105>. */
  approvalsAddress: env.address('TRACEGATE_APPROVALS_ADDRESS'),
  /** The reviewer group whose members approve audit exports (a human outside the requester). */
  exportReviewers: env.string('TRACEGATE_AUDIT_EXPORT_REVIEWERS', { fallback: 'auditors', pattern: /^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,62}$/, describe: 'a reviewer group name, e.g. auditors' }),
  /** How long an export waits for its approval before the request expires. */
  exportApprovalTimeoutSeconds: env.int('TRACEGATE_AUDIT_EXPORT_TIMEOUT_SECONDS', { fallback: 3600, min: 10, max: 86_400 }),
} satisfies Record<string, ConfigField<unknown>>;



export type AuditConfig = ConfigOf<typeof AUDIT_CONFIG_SCHEMA>;

export const AUDIT_CONFIG = Symbol('AUDIT_CONFIG');
