import type { ServiceDefinition } from '@tracegate/runtime';
import { POLICY_CONFIG_SCHEMA } from './policy.config.js';
import { PolicyModule } from './policy.module.js';

export const policyService: ServiceDefinition<typeof POLICY_CONFIG_SCHEMA> = {
  name: 'policy',
  defaultPorts: { grpc: 7102, metrics: 9102 },
  grpcServices: ['tracegate.policy.v1.PolicyService'],
  configSchema: POLICY_CONFIG_SCHEMA,
  module: (context, config) => PolicyModule.forRoot(context, config),
};
