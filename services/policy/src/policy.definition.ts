import type { ServiceDefinition } from '@tracegate/runtime';
import { POLICY_CONFIG_SCHEMA } from './policy.config.js';
import { PolicyModule } from './policy.module.js';
import { POLICY_GRPC_SERVICE } from './services/policy-decider.js';

export const policyService: ServiceDefinition<typeof POLICY_CONFIG_SCHEMA> = {
  name: 'policy',
  defaultPorts: { grpc: 7102, metrics: 9102 },
  grpcServices: [POLICY_GRPC_SERVICE],
  configSchema: POLICY_CONFIG_SCHEMA,
  module: (context, config) => PolicyModule.forRoot(context, config),
};
