import { Module, type DynamicModule } from '@nestjs/common';
import type { ServiceContext } from '@tracegate/runtime';

/**
 * The audit service projects the event log into tamper-evident, replayable sessions.
 * Its gRPC API is defined in proto/tracegate/audit/v1; the issues that build each part add the
 * controllers, services and repositories here.
 */
@Module({})
export class AuditModule {
  static forRoot(_context: ServiceContext): DynamicModule {
    return { module: AuditModule };
  }
}
