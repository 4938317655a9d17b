import { Column, Entity, PrimaryColumn } from 'typeorm';
import type { ReaderGrantRecord } from '../domain/reader-grant.js';

@Entity({ schema: 'audit', name: 'reader_grants' })
export class ReaderGrantEntity implements ReaderGrantRecord {
  @PrimaryColumn({ type: 'text' })
  id!: string;

  @Column({ type: 'text' })
  reader!: string;

  @Column({ type: 'text', nullable: true })
  agent!: string | null;

  @Column({ type: 'text', nullable: true })
  target!: string | null;

  @Column({ type: 'timestamptz', name: 'window_from', nullable: true })
  from!: Date | null;

  @Column({ type: 'timestamptz', name: 'window_until', nullable: true })
  until!: Date | null;

  @Column({ type: 'timestamptz', name: 'expires_at' })
  expiresAt!: Date;

  @Column({ type: 'timestamptz', name: 'created_at' })
  createdAt!: Date;

  @Column({ type: 'timestamptz', name: 'revoked_at', nullable: true })
  revokedAt!: Date | null;

  @Column({ type: 'text' })
  reason!: string;
}
