import { Module, type DynamicModule } from '@nestjs/common';
import type { ServiceContext } from '@tracegate/runtime';

/**
 * The approvals service holds risky commands for human reviewers (Slack, CLI, gRPC).
 * Its gRPC API is defined in proto/tracegate/approvals/v1; the issues that build each part add the
 * controllers, services and repositories here.
 */
@Module({})
export class ApprovalsModule {
  static forRoot(_context: ServiceContext): DynamicModule {
    return { module: ApprovalsModule };
  }
}
