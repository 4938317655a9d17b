import type { ServiceDefinition } from '@tracegate/runtime';
import { AUDIT_CONFIG_SCHEMA } from './audit.config.js';
import { AuditModule } from './audit.module.js';

export const auditService: ServiceDefinition<typeof AUDIT_CONFIG_SCHEMA> = {
  name: 'audit',
  defaultPorts: { grpc: 7106, metrics: 9106 },
  grpcServices: ['tracegate.audit.v1.AuditService', 'tracegate.audit.v1.TraceService', 'tracegate.audit.v1.ReaderGrantService'],
  configSchema: AUDIT_CONFIG_SCHEMA,
  module: (context, config) => AuditModule.forRoot(context, config),
};
