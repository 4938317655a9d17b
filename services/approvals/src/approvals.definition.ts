import type { ServiceDefinition } from '@tracegate/runtime';
import { APPROVALS_CONFIG_SCHEMA } from './approvals.config.js';
import { APPROVAL_SERVICE_NAME, ApprovalsModule } from './approvals.module.js';

export const approvalsService: ServiceDefinition<typeof APPROVALS_CONFIG_SCHEMA> = {
  name: 'approvals',
  defaultPorts: { grpc: 7105, metrics: 9105 },
  grpcServices: [APPROVAL_SERVICE_NAME],
  configSchema: APPROVALS_CONFIG_SCHEMA,
  module: (context, config) => ApprovalsModule.forRoot(context, config),
};
