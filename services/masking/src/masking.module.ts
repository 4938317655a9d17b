import { Module, type DynamicModule } from '@nestjs/common';
import type { ServiceContext } from '@tracegate/runtime';
import { MaskingController } from './controllers/masking.controller.js';
import { MASKING_CONFIG, type MaskingConfig } from './masking.config.js';
import { Clock } from './repositories/clock.js';
import { ProfileActivationRepository } from './repositories/profile-activation.repository.js';
import { ProfileRegistry } from './services/profile-registry.js';

/**
 * The masking service owns masking profiles (the built-in `default` and the YAML files of
 * TRACEGATE_MASKING_PROFILES_DIR), pushes them to the gateway (WatchProfiles) and redacts text
 * for callers off the hot path (Redact). The engine itself is libs/masking.
 */
@Module({})
export class MaskingModule {
  static forRoot(_context: ServiceContext, config: MaskingConfig): DynamicModule {
    return {
      module: MaskingModule,
      controllers: [MaskingController],
      providers: [{ provide: MASKING_CONFIG, useValue: config }, Clock, ProfileActivationRepository, ProfileRegistry],
    };
  }
}
