import { Inject, Injectable, Module, type DynamicModule, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import type { DataSource } from 'typeorm';
import type { ServiceContext } from '@tracegate/runtime';
import { AUDIT_CONFIG, type AuditConfig } from './audit.config.js';
import { AuditController } from './controllers/audit.controller.js';
import { InternalTokenGuard } from './controllers/internal-token.guard.js';
import { AUDIT_DATA_SOURCE, openAuditDatabase } from './repositories/audit-database.js';
import { SessionProjectionRepository } from './repositories/session-projection.repository.js';
import { SessionQueryRepository } from './repositories/session-query.repository.js';
import { SessionProjector } from './services/session-projector.js';
import { SessionReader } from './services/session-reader.js';
import { CheckpointRepository } from './repositories/checkpoint.repository.js';
import { SessionEvidenceRepository } from './repositories/session-evidence.repository.js';
import { CheckpointSigner } from './services/checkpoint-signer.js';
import { SessionReplayer } from './services/session-replayer.js';
import { SessionVerifier } from './services/session-verifier.js';
import { SessionAccess } from './services/session-access.js';
import { ApprovalReviewRepository } from './repositories/approval-review.repository.js';
import { ProjectionRebuilder } from './services/projection-rebuilder.js';
import { ProjectionRebuildRepository } from './repositories/projection-rebuild.repository.js';
import { TRACE_CONTROLLERS, TRACE_PROVIDERS } from './traces/traces.providers.js';
import { ExportApprovals } from './exports/clients/export-approvals.js';
import { EXPORT_APPROVALS, SessionExporter } from './exports/services/session-exporter.js';

/**
 * Starts the projection once the module is up, and at shutdown stops it before closing the
 * database, so the event in hand finishes and its position is committed first.
 */
@Injectable()
class AuditLifecycle implements OnApplicationBootstrap, OnApplicationShutdown {
  constructor(
    private readonly projector: SessionProjector,
    private readonly signer: CheckpointSigner,
    private readonly verifier: SessionVerifier,
    @Inject(EXPORT_APPROVALS) private readonly approvals: ExportApprovals,
    @Inject(AUDIT_DATA_SOURCE) private readonly db: DataSource,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    this.projector.onApplied(this.signer.onProjected);
    await this.projector.start();
    this.verifier.start();
  }

  async onApplicationShutdown(): Promise<void> {
    await this.projector.stop();
    // After the projection stopped: the last batches it applied are signed before the log closes.
    await this.signer.stop();
    await this.verifier.stop();
    this.approvals.close();
    await this.db.destroy();
  }
}

/**
 * The audit service projects the session events into sessions and statements
 * (proto/tracegate/audit/v1), replays and verifies them, and signs checkpoints over them.
 */
@Module({})
export class AuditModule {
  static forRoot(context: ServiceContext, config: AuditConfig): DynamicModule {
    return {
      module: AuditModule,
      controllers: [AuditController, ...TRACE_CONTROLLERS],
      providers: [
        { provide: AUDIT_CONFIG, useValue: config },
        { provide: AUDIT_DATA_SOURCE, useFactory: () => openAuditDatabase(context.databaseUrl) },
        AuditLifecycle,
        InternalTokenGuard,
        SessionProjectionRepository,
        SessionQueryRepository,
        SessionProjector,
        SessionReader,
        SessionEvidenceRepository,
        CheckpointRepository,
        CheckpointSigner,
        SessionReplayer,
        SessionVerifier,
        ProjectionRebuildRepository,
        ProjectionRebuilder,
        SessionAccess,
        ApprovalReviewRepository,
        {
          provide: EXPORT_APPROVALS,
          useFactory: () => new ExportApprovals(config.approvalsAddress ?? `127.0.0.1:${context.env.TRACEGATE_APPROVALS_GRPC_PORT ?? 7105}`, config.internalToken, context.logger),
        },
        SessionExporter,
        ...TRACE_PROVIDERS,
      ],
    };
  }
}
