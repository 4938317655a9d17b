import { env, type ConfigField } from '@tracegate/runtime';

export const gatewayConfigSchema = {
  postgresPort: env.port('TRACEGATE_GATEWAY_POSTGRES_PORT', 15432),
  sshPort: env.port('TRACEGATE_GATEWAY_SSH_PORT', 15022),
  /** The SSH listener's host private key (OpenSSH or PEM); without it the gateway serves no SSH. */
  sshHostKeyFile: env.optional(env.string('TRACEGATE_GATEWAY_SSH_HOST_KEY_FILE')),
  tlsCertFile: env.optional(env.string('TRACEGATE_GATEWAY_TLS_CERT_FILE')),
  tlsKeyFile: env.optional(env.string('TRACEGATE_GATEWAY_TLS_KEY_FILE')),
  allowPlaintext: env.oneOf('TRACEGATE_GATEWAY_ALLOW_PLAINTEXT', ['true', 'false'] as const, 'false'),
  internalToken: env.string('TRACEGATE_INTERNAL_TOKEN', { pattern: /^.{32,}$/, describe: 'a shared secret of at least 32 characters', secret: true }),
  brokerAddress: env.address('TRACEGATE_BROKER_ADDRESS'),
  policyAddress: env.address('TRACEGATE_POLICY_ADDRESS'),
  approvalsAddress: env.address('TRACEGATE_APPROVALS_ADDRESS'),
  maskingAddress: env.address('TRACEGATE_MASKING_ADDRESS'),
  /** The key of the hash masking strategy, shared with the masking service so a value masks to the same token everywhere. */
  maskingHashKey: env.optional(env.string('TRACEGATE_MASKING_HASH_KEY', { pattern: /^[A-Za-z0-9+/_-]{43,}={0,2}$/, describe: 'base64 of at least 32 random bytes (`openssl rand -base64 32`)', secret: true })),
  /**
   * The masking profile for statements whose decision names none; `none`: such results pass
   * unmasked and their rows are not recorded (an empty value means the default, like any unset variable).
   */
  maskingFallbackProfile: env.string('TRACEGATE_GATEWAY_MASKING_PROFILE', { fallback: 'default', pattern: /^[A-Za-z0-9_.-]+$/, describe: "a masking profile name, or 'none'" }),
  /** How many rows of each result the audit trail keeps, after masking (the total count is always recorded). */
  recordedRows: env.int('TRACEGATE_GATEWAY_RECORDED_ROWS', { fallback: 100, min: 0, max: 100_000 }),
  auditAddress: env.address('TRACEGATE_AUDIT_ADDRESS'),
  durability: env.oneOf('TRACEGATE_DURABILITY', ['strict', 'async'] as const, 'strict'),
  /** As PostgreSQL's authentication_timeout: a client must finish start-up and send its key within this. */
  startupTimeoutMs: env.int('TRACEGATE_GATEWAY_STARTUP_TIMEOUT_MS', { fallback: 60_000, min: 1000, max: 600_000 }),
  upstreamTimeoutMs: env.int('TRACEGATE_GATEWAY_UPSTREAM_TIMEOUT_MS', { fallback: 10_000, min: 100, max: 120_000 }),
} satisfies Record<string, ConfigField<unknown>>;

