import type { ServiceDefinition } from '@tracegate/runtime';
import { ApprovalsModule } from './approvals.module.js';

export const approvalsService: ServiceDefinition = {
  name: 'approvals',
  defaultPorts: { grpc: 7105, metrics: 9105 },
  grpcServices: ['tracegate.approvals.v1.ApprovalService'],
  configSchema: {},
  module: (context) => ApprovalsModule.forRoot(context),
};
