import { Inject, Injectable, Module, type DynamicModule, type OnApplicationShutdown } from '@nestjs/common';
import type { DataSource } from 'typeorm';
import type { ServiceContext } from '@tracegate/runtime';
import { BROKER_CONFIG, type BrokerConfig } from './broker.config.js';
import { CredentialController } from './controllers/credential.controller.js';
import { IdentityController } from './controllers/identity.controller.js';
import { InternalTokenGuard } from './controllers/internal-token.guard.js';
import { TargetController } from './controllers/target.controller.js';
import { AccessEventRecorder } from './repositories/access-event-recorder.js';
import { ApiKeyMaterial } from './repositories/api-key-material.js';
import { ApiKeyRepository } from './repositories/api-key.repository.js';
import { BROKER_DATA_SOURCE, openBrokerDatabase } from './repositories/broker-database.js';
import { Clock } from './repositories/clock.js';
import { CredentialLeaseRepository } from './repositories/credential-lease.repository.js';
import { SecretCipher } from './repositories/secret-cipher.js';
import { TargetRepository } from './repositories/target.repository.js';
import { ApiKeyIssuer } from './services/api-key-issuer.js';
import { CredentialBroker } from './services/credential-broker.js';
import { TargetRegistry } from './services/target-registry.js';

/** Closes the database after the gRPC server has finished the calls in flight. */
@Injectable()
class BrokerDatabaseLifecycle implements OnApplicationShutdown {
  constructor(@Inject(BROKER_DATA_SOURCE) private readonly db: DataSource) {}
  async onApplicationShutdown(): Promise<void> {
    await this.db.destroy();
  }
}

/**
 * The broker owns targets and their encrypted secrets, API keys and credential leases
 * (proto/tracegate/broker/v1). GrantService is not implemented yet: its RPCs answer UNIMPLEMENTED.
 */
@Module({})
export class BrokerModule {
  static forRoot(context: ServiceContext, config: BrokerConfig): DynamicModule {
    return {
      module: BrokerModule,
      controllers: [TargetController, IdentityController, CredentialController],
      providers: [
        { provide: BROKER_CONFIG, useValue: config },
        { provide: BROKER_DATA_SOURCE, useFactory: () => openBrokerDatabase(context.databaseUrl) },
        { provide: SecretCipher, useValue: new SecretCipher(config.keyring) },
        BrokerDatabaseLifecycle,
        InternalTokenGuard,
        AccessEventRecorder,
        ApiKeyMaterial,
        Clock,
        TargetRepository,
        ApiKeyRepository,
        CredentialLeaseRepository,
        TargetRegistry,
        ApiKeyIssuer,
        CredentialBroker,
      ],
    };
  }
}
