import { createHmac } from 'node:crypto';
import { Inject, Injectable, type OnApplicationShutdown, type Provider } from '@nestjs/common';
import { SERVICE_CONTEXT, type ServiceContext } from '@tracegate/runtime';
import { AUDIT_CONFIG, type AuditConfig } from '../audit.config.js';
import { AuditEventWriter } from '../grants/repositories/audit-event-writer.js';
import { ReaderGrantRepository } from '../grants/repositories/reader-grant.repository.js';
import { ReaderGrants } from '../grants/services/reader-grants.js';
import { ReaderGrantController } from '../grants/controllers/reader-grant.controller.js';
import { BrokerIdentities } from './clients/broker-identities.js';
import { EngineRedactor, TRACE_REDACTOR, type TraceRedactor } from './clients/trace-redactor.js';
import { BROKER_IDENTITIES, TraceCallers } from './controllers/trace-callers.js';
import { TraceController } from './controllers/trace.controller.js';
import { TraceProjectionRepository } from './repositories/trace-projection.repository.js';
import { TraceRepository } from './repositories/trace.repository.js';
import { TraceProjector } from './services/trace-projector.js';
import { TraceRegistry } from './services/trace-registry.js';

const local = (port: string | undefined, fallback: number) => `127.0.0.1:${port ?? fallback}`;

/** What AuditModule adds for traces and reader grants: one list, so the module file changes by one line. */
export const TRACE_CONTROLLERS = [TraceController, ReaderGrantController];

/** Closes the gRPC clients traces use when the service stops. */
@Injectable()
class TraceClientsLifecycle implements OnApplicationShutdown {
  constructor(
    @Inject(BROKER_IDENTITIES) private readonly broker: BrokerIdentities,
    @Inject(TRACE_REDACTOR) private readonly redactor: TraceRedactor,
  ) {}

  onApplicationShutdown(): void {
    this.broker.close();
    this.redactor.close();
  }
}

export const TRACE_PROVIDERS: Provider[] = [
  TraceClientsLifecycle,
  {
    provide: BROKER_IDENTITIES,
    inject: [AUDIT_CONFIG, SERVICE_CONTEXT],
    useFactory: (config: AuditConfig, context: ServiceContext) => new BrokerIdentities(config.brokerAddress ?? local(context.env.TRACEGATE_BROKER_GRPC_PORT, 7104), config.internalToken),
  },
  {
    provide: TRACE_REDACTOR,
    inject: [AUDIT_CONFIG],
    useFactory: (config: AuditConfig) =>
      new EngineRedactor(config.maskingHashKey ? Buffer.from(config.maskingHashKey, 'base64') : createHmac('sha256', config.internalToken).update('tracegate trace masking').digest()),
  },
  TraceCallers,
  TraceRepository,
  TraceRegistry,
  TraceProjectionRepository,
  TraceProjector,
  AuditEventWriter,
  ReaderGrantRepository,
  ReaderGrants,
];
