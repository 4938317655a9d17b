import type { ServiceDefinition } from '@tracegate/runtime';
import { MaskingModule } from './masking.module.js';

export const maskingService: ServiceDefinition = {
  name: 'masking',
  defaultPorts: { grpc: 7103, metrics: 9103 },
  grpcServices: ['tracegate.masking.v1.MaskingService'],
  configSchema: {},
  module: (context) => MaskingModule.forRoot(context),
};
