import { Column, Entity, PrimaryColumn } from 'typeorm';

/** An OpenSSH public key an identity logs in to the gateway with, instead of typing its API key. */
@Entity({ schema: 'broker', name: 'ssh_keys' })
export class SshKeyEntity {
  @PrimaryColumn({ type: 'text', name: 'api_key_id' })
  apiKeyId!: string;

  /** `SHA256:<unpadded base64>` of the key blob: what a login is looked up by. */
  @PrimaryColumn({ type: 'text' })
  fingerprint!: string;

  /** `<algorithm> <base64 blob>`, without the comment. */
  @Column({ type: 'text', name: 'public_key' })
  publicKey!: string;

  @Column({ type: 'timestamptz', name: 'added_at' })
  addedAt!: Date;
}
