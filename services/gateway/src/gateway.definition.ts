import type { ServiceDefinition } from '@tracegate/runtime';
import { gatewayConfigSchema } from './gateway.config.js';
import { GatewayModule, type GatewayConfig } from './gateway.module.js';

export const gatewayService: ServiceDefinition<typeof gatewayConfigSchema> = {
  name: 'gateway',
  defaultPorts: { grpc: 7101, metrics: 9101 },
  grpcServices: [],
  configSchema: gatewayConfigSchema,
  module: (context, config) => GatewayModule.forRoot(context, config as GatewayConfig),
};
