import { Inject, Injectable, Module, Optional, type DynamicModule, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import type { Subscription } from 'rxjs';
import type { DataSource } from 'typeorm';
import { HealthState, SERVICE_CONTEXT, type ServiceContext } from '@tracegate/runtime';
import { APPROVALS_CONFIG, slackSettingsOf, type ApprovalsConfig } from './approvals.config.js';
import { ApprovalController } from './controllers/approval.controller.js';
import { CallerCheck } from './controllers/caller-check.js';
import { ApprovalNotifications } from './repositories/approval-notifications.js';
import { ApprovalRepository } from './repositories/approval.repository.js';
import { APPROVALS_DATA_SOURCE, openApprovalsDatabase } from './repositories/approvals-database.js';
import { Clock } from './repositories/clock.js';
import { ReviewerDirectory } from './repositories/reviewer-directory.js';
import { SlackMessageRepository } from './repositories/slack-message.repository.js';
import { ApprovalDesk } from './services/approval-desk.js';
import { ApprovalFeed } from './services/approval-feed.js';
import { SlackBot } from './slack/slack-bot.js';

export const APPROVAL_SERVICE_NAME = 'tracegate.approvals.v1.ApprovalService';

/**
 * Resumes pending requests' expiry at start. At shutdown the host first marks the service not
 * serving and ends health watches, and only then lets gRPC wait for open calls: Watch streams are
 * ended at that first signal, or the graceful shutdown would wait the whole grace period for them.
 */
@Injectable()
class ApprovalsLifecycle implements OnApplicationBootstrap, OnApplicationShutdown {
  private draining: Subscription | undefined;

  constructor(
    private readonly desk: ApprovalDesk,
    private readonly health: HealthState,
    private readonly directory: ReviewerDirectory,
    private readonly notifications: ApprovalNotifications,
    @Inject(APPROVALS_DATA_SOURCE) private readonly db: DataSource,
    @Optional() @Inject(SlackBot) private readonly slack: SlackBot | null,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    await this.desk.resume();
    this.draining = this.health.watch(APPROVAL_SERVICE_NAME)?.subscribe({ complete: () => this.desk.stop() });
    await this.slack?.start();
  }

  async onApplicationShutdown(): Promise<void> {
    this.draining?.unsubscribe();
    this.desk.stop();
    await this.slack?.stop();
    await this.notifications.stop();
    this.directory.close();
    await this.db.destroy();
  }
}

/** The default broker address: this machine, at the broker's configured (or default) gRPC port. */
function localBroker(env: Readonly<Record<string, string | undefined>>): string {
  return `127.0.0.1:${env.TRACEGATE_BROKER_GRPC_PORT?.trim() || '7104'}`;
}

/**
 * The approvals service holds risky commands for human reviewers (proto/tracegate/approvals/v1):
 * event-sourced requests, reviewers resolved by the broker, and a Slack bot when configured.
 */
@Module({})
export class ApprovalsModule {
  static forRoot(context: ServiceContext, config: ApprovalsConfig): DynamicModule {
    // Checked before anything starts: a half-configured Slack bot stops start-up, naming what is missing.
    const slack = slackSettingsOf(config);
    const bindHost = context.env.TRACEGATE_BIND_HOST?.trim() || '127.0.0.1';
    return {
      module: ApprovalsModule,
      controllers: [ApprovalController],
      providers: [
        { provide: APPROVALS_CONFIG, useValue: config },
        { provide: APPROVALS_DATA_SOURCE, useFactory: () => openApprovalsDatabase(context.databaseUrl) },
        { provide: ReviewerDirectory, useFactory: () => new ReviewerDirectory(config.brokerAddress ?? localBroker(context.env), config.internalToken) },
        Clock,
        ApprovalRepository,
        ApprovalNotifications,
        ApprovalFeed,
        ApprovalDesk,
        CallerCheck,
        SlackMessageRepository,
        ...(slack
          ? [
              {
                provide: SlackBot,
                inject: [ApprovalDesk, ApprovalFeed, ReviewerDirectory, SlackMessageRepository, SERVICE_CONTEXT],
                useFactory: (desk: ApprovalDesk, feed: ApprovalFeed, directory: ReviewerDirectory, messages: SlackMessageRepository, ctx: ServiceContext) =>
                  new SlackBot(slack, desk, feed, directory, messages, ctx.logger, bindHost),
              },
            ]
          : []),
        ApprovalsLifecycle,
      ],
    };
  }
}
