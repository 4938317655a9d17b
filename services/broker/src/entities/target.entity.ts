import { Column, Entity, PrimaryColumn } from 'typeorm';

@Entity({ schema: 'broker', name: 'targets' })
export class TargetEntity {
  @PrimaryColumn({ type: 'text' })
  name!: string;

  @Column({ type: 'text' })
  type!: 'postgres' | 'ssh';

  @Column({ type: 'text' })
  host!: string;

  @Column({ type: 'integer' })
  port!: number;

  @Column({ type: 'text' })
  database!: string;

  @Column({ type: 'text', name: 'user' })
  user!: string;

  /** Postgres only; null for an SSH target, whose server is authenticated by its host key. */
  @Column({ type: 'text', name: 'tls_mode', nullable: true })
  tlsMode!: 'disable' | 'require' | 'verify-full' | null;

  /** SSH only: the pinned host public key, `<algorithm> <base64>`; empty for Postgres. */
  @Column({ type: 'text', name: 'host_key' })
  hostKey!: string;

  @Column({ type: 'jsonb' })
  labels!: Record<string, string>;

  @Column({ type: 'timestamptz', name: 'created_at' })
  createdAt!: Date;

  @Column({ type: 'bytea', name: 'secret_ciphertext' })
  secretCiphertext!: Buffer;

  @Column({ type: 'bytea', name: 'secret_nonce' })
  secretNonce!: Buffer;

  @Column({ type: 'bytea', name: 'secret_auth_tag' })
  secretAuthTag!: Buffer;

  @Column({ type: 'text', name: 'secret_key_id' })
  secretKeyId!: string;
}
