import type { ServiceDefinition } from '@tracegate/runtime';
import { BROKER_CONFIG_SCHEMA } from './broker.config.js';
import { BrokerModule } from './broker.module.js';

export const brokerService: ServiceDefinition<typeof BROKER_CONFIG_SCHEMA> = {
  name: 'broker',
  defaultPorts: { grpc: 7104, metrics: 9104 },
  grpcServices: ['tracegate.broker.v1.TargetService', 'tracegate.broker.v1.CredentialService', 'tracegate.broker.v1.GrantService', 'tracegate.broker.v1.IdentityService'],
  configSchema: BROKER_CONFIG_SCHEMA,
  module: (context, config) => BrokerModule.forRoot(context, config),
};
