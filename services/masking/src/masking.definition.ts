import type { ServiceDefinition } from '@tracegate/runtime';
import { MASKING_CONFIG_SCHEMA } from './masking.config.js';
import { MaskingModule } from './masking.module.js';
import { MASKING_GRPC_SERVICE } from './services/profile-registry.js';

export const maskingService: ServiceDefinition<typeof MASKING_CONFIG_SCHEMA> = {
  name: 'masking',
  defaultPorts: { grpc: 7103, metrics: 9103 },
  grpcServices: [MASKING_GRPC_SERVICE],
  configSchema: MASKING_CONFIG_SCHEMA,
  module: (context, config) => MaskingModule.forRoot(context, config),
};
