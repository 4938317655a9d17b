import { Module, type DynamicModule } from '@nestjs/common';
import type { ServiceContext } from '@tracegate/runtime';

/**
 * The broker service owns targets, their encrypted secrets, API keys, just-in-time grants and short-lived credential leases.
 * Its gRPC API is defined in proto/tracegate/broker/v1; the issues that build each part add the
 * controllers, services and repositories here.
 */
@Module({})
export class BrokerModule {
  static forRoot(_context: ServiceContext): DynamicModule {
    return { module: BrokerModule };
  }
}
