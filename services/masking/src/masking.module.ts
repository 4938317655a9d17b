import { Module, type DynamicModule } from '@nestjs/common';
import type { ServiceContext } from '@tracegate/runtime';

/**
 * The masking service owns masking profiles and redacts text for callers off the hot path.
 * Its gRPC API is defined in proto/tracegate/masking/v1; the issues that build each part add the
 * controllers, services and repositories here.
 */
@Module({})
export class MaskingModule {
  static forRoot(_context: ServiceContext): DynamicModule {
    return { module: MaskingModule };
  }
}
