import { Inject, Injectable } from '@nestjs/common';
import type { DataSource, QueryRunner } from 'typeorm';
import { SERVICE_CONTEXT, type ServiceContext } from '@tracegate/runtime';
import { APPROVALS_DATA_SOURCE } from './approvals-database.js';

/** The PostgreSQL channel every committed change to a request is announced on, as `<id>:<version>`. */
export const CHANGES_CHANNEL = 'tracegate_approvals';
const RECONNECT_MS = 1_000;

/** What node-postgres' client offers for LISTEN (TypeORM's query runner hands out that client). */
interface ListeningConnection {
  on(event: 'notification', listener: (message: { channel: string; payload?: string }) => void): void;
  on(event: 'error' | 'end', listener: (error?: Error) => void): void;
  removeAllListeners(event: string): void;
  query(sql: string): Promise<unknown>;
}

export type ChangeListener = (id: string, version: number) => void;

/**
 * Changes made by any replica of the approvals service, heard through PostgreSQL LISTEN: each
 * change is announced with NOTIFY inside the transaction that commits it, so it is heard exactly
 * when it is visible. A replica thus tells its own Watch streams about a verdict given on another,
 * and times the deadline of a request another replica opened. A lost connection is opened again.
 */
@Injectable()
export class ApprovalNotifications {
  private runner: QueryRunner | undefined;
  private listener: ChangeListener | undefined;
  private stopped = false;
  private retry: NodeJS.Timeout | undefined;

  constructor(
    @Inject(APPROVALS_DATA_SOURCE) private readonly db: DataSource,
    @Inject(SERVICE_CONTEXT) private readonly context: ServiceContext,
  ) {}

  async listen(listener: ChangeListener): Promise<void> {
    this.listener = listener;
    await this.connect();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retry);
    const runner = this.runner;
    this.runner = undefined;
    if (runner && !runner.isReleased) {
      await runner.query(`UNLISTEN ${CHANGES_CHANNEL}`).catch(() => undefined);
      await runner.release();
    }
  }

  private async connect(): Promise<void> {
    const runner = this.db.createQueryRunner();
    try {
      const connection = (await runner.connect()) as ListeningConnection;
      connection.on('notification', (message) => {
        if (message.channel !== CHANGES_CHANNEL || !message.payload) return;
        const colon = message.payload.lastIndexOf(':');
        const version = Number(message.payload.slice(colon + 1));
        if (colon > 0 && Number.isSafeInteger(version)) this.listener?.(message.payload.slice(0, colon), version);
      });
      const lost = (error?: Error) => {
        if (this.stopped || this.runner !== runner) return;
        this.runner = undefined;
        this.context.logger.warn({ err: error?.message }, 'lost the connection that hears approval changes from other replicas; opening it again');
        void runner.release().catch(() => undefined);
        this.reconnectLater();
      };
      connection.on('error', lost);
      connection.on('end', lost);
      this.runner = runner;
      await connection.query(`LISTEN ${CHANGES_CHANNEL}`);
    } catch (error) {
      if (this.runner === runner) this.runner = undefined;
      await runner.release().catch(() => undefined);
      throw error;
    }
  }

  private reconnectLater(): void {
    if (this.stopped) return;
    this.retry = setTimeout(() => {
      this.connect().catch((error: unknown) => {
        this.context.logger.warn({ err: (error as Error).message }, 'cannot listen for approval changes yet; trying again');
        this.reconnectLater();
      });
    }, RECONNECT_MS);
    this.retry.unref();
  }
}
