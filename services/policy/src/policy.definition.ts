import type { ServiceDefinition } from '@tracegate/runtime';
import { PolicyModule } from './policy.module.js';

export const policyService: ServiceDefinition = {
  name: 'policy',
  defaultPorts: { grpc: 7102, metrics: 9102 },
  grpcServices: ['tracegate.policy.v1.PolicyService'],
  configSchema: {},
  module: (context) => PolicyModule.forRoot(context),
};
