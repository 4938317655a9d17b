import { fileURLToPath } from 'node:url';

/**
 * The .proto sources. Nest's gRPC transport loads them at run time, so they ship with every
 * service image (the Dockerfile copies proto/ next to the compiled code).
 */
export const PROTO_ROOT = fileURLToPath(new URL('../../../proto/', import.meta.url));

/** Loader options that agree with the ts-proto options in proto/buf.gen.yaml. */
export const PROTO_LOADER_OPTIONS = {
  keepCase: false, // ts-proto emits camelCase field names
  longs: Number, // forceLong=number
  enums: Number, // numeric enums (stringEnums=false)
  defaults: true, // ts-proto types have every field present
  oneofs: true,
  includeDirs: [PROTO_ROOT],
} as const;

/** The proto file each service serves, relative to PROTO_ROOT, and the package it declares. */
export const SERVICE_PROTOS = {
  gateway: { files: ['tracegate/gateway/v1/events.proto'], package: 'tracegate.gateway.v1' },
  policy: { files: ['tracegate/policy/v1/policy.proto'], package: 'tracegate.policy.v1' },
  masking: { files: ['tracegate/masking/v1/masking.proto'], package: 'tracegate.masking.v1' },
  broker: { files: ['tracegate/broker/v1/broker.proto'], package: 'tracegate.broker.v1' },
  approvals: { files: ['tracegate/approvals/v1/approvals.proto'], package: 'tracegate.approvals.v1' },
  audit: { files: ['tracegate/audit/v1/audit.proto'], package: 'tracegate.audit.v1' },
} as const;

export type ServiceName = keyof typeof SERVICE_PROTOS;
export const SERVICE_NAMES = Object.keys(SERVICE_PROTOS) as ServiceName[];

export const HEALTH_PROTO = { file: 'grpc/health/v1/health.proto', package: 'grpc.health.v1' } as const;
