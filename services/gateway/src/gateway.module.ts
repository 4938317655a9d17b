import { Module, type DynamicModule } from '@nestjs/common';
import type { ServiceContext } from '@tracegate/runtime';

/**
 * The gateway service terminates client protocols (Postgres wire, SSH), holds and resumes commands, masks responses.
 * Its gRPC API is defined in proto/tracegate/gateway/v1; the issues that build each part add the
 * controllers, services and repositories here.
 */
@Module({})
export class GatewayModule {
  static forRoot(_context: ServiceContext): DynamicModule {
    return { module: GatewayModule };
  }
}
