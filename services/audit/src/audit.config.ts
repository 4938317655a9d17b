import { env, type ConfigField, type ConfigOf } from '@tracegate/runtime';

export const AUDIT_CONFIG_SCHEMA = {
  internalToken: env.string('TRACEGATE_INTERNAL_TOKEN', { pattern: /^.{32,}$/, describe: 'a shared secret of at least 32 characters (`openssl rand -base64 32`)', secret: true }),
} satisfies Record<string, ConfigField<unknown>>;

export type AuditConfig = ConfigOf<typeof AUDIT_CONFIG_SCHEMA>;

export const AUDIT_CONFIG = Symbol('AUDIT_CONFIG');
