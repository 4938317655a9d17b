import type { ServiceDefinition } from '@tracegate/runtime';
import { BrokerModule } from './broker.module.js';

export const brokerService: ServiceDefinition = {
  name: 'broker',
  defaultPorts: { grpc: 7104, metrics: 9104 },
  grpcServices: ['tracegate.broker.v1.TargetService', 'tracegate.broker.v1.CredentialService', 'tracegate.broker.v1.GrantService', 'tracegate.broker.v1.IdentityService'],
  configSchema: {},
  module: (context) => BrokerModule.forRoot(context),
};
