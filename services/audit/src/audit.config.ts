import { env, type ConfigField, type ConfigOf } from '@tracegate/runtime';

export const AUDIT_CONFIG_SCHEMA = {
  internalToken: env.string('TRACEGATE_INTERNAL_TOKEN', { pattern: /^.{32,}$/, describe: 'a shared secret of at least 32 characters (`openssl rand -base64 32`)', secret: true }),
  /** Largest reasoning trace TraceService.Submit takes (1 MiB); gRPC's own 4 MiB message limit caps it. */
  traceMaxBytes: env.int('TRACEGATE_TRACE_MAX_BYTES', { fallback: 1024 * 1024, min: 1024, max: 4 * 1024 * 1024 - 64 * 1024 }),
  /** Where the broker checks agents' API keys; default 127.0.0.1:<TRACEGATE_BROKER_GRPC_PORT or 7104>. */
  brokerAddress: optionalAddress('TRACEGATE_BROKER_ADDRESS'),
  /** Where traces are masked; default 127.0.0.1:<TRACEGATE_MASKING_GRPC_PORT or 7103>. */
  maskingAddress: optionalAddress('TRACEGATE_MASKING_ADDRESS'),
} satisfies Record<string, ConfigField<unknown>>;

function optionalAddress(name: string): ConfigField<string | undefined> {
  const field = env.string(name, { pattern: /^[^\s:]+:\d+$/, describe: 'host:port' });
  return { env: field.env, parse: (raw) => (raw === undefined ? undefined : field.parse(raw)) };
}

export type AuditConfig = ConfigOf<typeof AUDIT_CONFIG_SCHEMA>;

export const AUDIT_CONFIG = Symbol('AUDIT_CONFIG');
