import { Inject, Injectable } from '@nestjs/common';
import type { DataSource } from 'typeorm';
import { SlackMessageEntity } from '../entities/slack-message.entity.js';
import { APPROVALS_DATA_SOURCE } from './approvals-database.js';

/** Where each request's Slack message is, so later changes update it (after a restart too). */
@Injectable()
export class SlackMessageRepository {
  constructor(@Inject(APPROVALS_DATA_SOURCE) private readonly db: DataSource) {}

  async save(message: SlackMessageEntity): Promise<void> {
    await this.db.getRepository(SlackMessageEntity).upsert(message, ['approvalId']);
  }

  find(approvalId: string): Promise<SlackMessageEntity | null> {
    return this.db.getRepository(SlackMessageEntity).findOne({ where: { approvalId } });
  }
}
