import { openServiceDatabase } from '@tracegate/runtime/service-database';
import type { DataSource } from 'typeorm';
import { ApprovalEventEntity } from '../entities/approval-event.entity.js';
import { ApprovalRequestEntity } from '../entities/approval-request.entity.js';
import { SlackMessageEntity } from '../entities/slack-message.entity.js';
import { ApprovalsInitial1763800000000 } from '../migrations/1763800000000-approvals-initial.js';

export const APPROVALS_SCHEMA = 'approvals';
export const APPROVALS_DATA_SOURCE = Symbol('APPROVALS_DATA_SOURCE');

/** The approvals tables, in their own schema so the service can share a database (the all-in-one does). */
export function openApprovalsDatabase(databaseUrl: string): Promise<DataSource> {
  return openServiceDatabase({
    databaseUrl,
    schema: APPROVALS_SCHEMA,
    entities: [ApprovalEventEntity, ApprovalRequestEntity, SlackMessageEntity],
    migrations: [ApprovalsInitial1763800000000],
    applicationName: 'tracegate-approvals',
  });
}
