import type { ServiceDefinition } from '@tracegate/runtime';
import { AuditModule } from './audit.module.js';

export const auditService: ServiceDefinition = {
  name: 'audit',
  defaultPorts: { grpc: 7106, metrics: 9106 },
  grpcServices: ['tracegate.audit.v1.AuditService', 'tracegate.audit.v1.TraceService'],
  configSchema: {},
  module: (context) => AuditModule.forRoot(context),
};
