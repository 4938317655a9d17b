import type { ServiceDefinition } from '@tracegate/runtime';
import { GatewayModule } from './gateway.module.js';

export const gatewayService: ServiceDefinition = {
  name: 'gateway',
  defaultPorts: { grpc: 7101, metrics: 9101 },
  grpcServices: [],
  configSchema: {},
  module: (context) => GatewayModule.forRoot(context),
};
