import { Module, type DynamicModule } from '@nestjs/common';
import type { ServiceContext } from '@tracegate/runtime';

/**
 * The policy service owns policy documents and their versions, and decides each statement.
 * Its gRPC API is defined in proto/tracegate/policy/v1; the issues that build each part add the
 * controllers, services and repositories here.
 */
@Module({})
export class PolicyModule {
  static forRoot(_context: ServiceContext): DynamicModule {
    return { module: PolicyModule };
  }
}
