import { Column, Entity, PrimaryColumn } from 'typeorm';

@Entity({ schema: 'broker', name: 'api_keys' })
export class ApiKeyEntity {
  @PrimaryColumn({ type: 'text' })
  id!: string;

  @Column({ type: 'text' })
  name!: string;

  @Column({ type: 'text' })
  kind!: 'agent' | 'human' | 'service';

  @Column({ type: 'text', array: true })
  groups!: string[];

  @Column({ type: 'bytea', name: 'key_hash' })
  keyHash!: Buffer;

  @Column({ type: 'timestamptz', name: 'created_at' })
  createdAt!: Date;

  @Column({ type: 'timestamptz', name: 'revoked_at', nullable: true })
  revokedAt!: Date | null;
}
