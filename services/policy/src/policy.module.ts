import { Module, type DynamicModule } from '@nestjs/common';
import type { ServiceContext } from '@tracegate/runtime';
import { InternalTokenGuard } from './controllers/internal-token.guard.js';
import { PolicyController } from './controllers/policy.controller.js';
import { POLICY_CONFIG, type PolicyConfig } from './policy.config.js';
import { Clock } from './repositories/clock.js';
import { PolicyActivationRepository } from './repositories/policy-activation.repository.js';
import { PolicyDecider } from './services/policy-decider.js';

/**
 * The policy service owns policy documents and their versions, and decides each statement
 * (proto/tracegate/policy/v1). The policy comes from TRACEGATE_POLICY_DIR or TRACEGATE_POLICY_FILE,
 * PublishPolicy, or the built-in one.
 */
@Module({})
export class PolicyModule {
  static forRoot(_context: ServiceContext, config: PolicyConfig): DynamicModule {
    return {
      module: PolicyModule,
      controllers: [PolicyController],
      providers: [{ provide: POLICY_CONFIG, useValue: config }, InternalTokenGuard, Clock, PolicyActivationRepository, PolicyDecider],
    };
  }
}
