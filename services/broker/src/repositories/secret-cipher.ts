import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { BrokerError, BrokerErrorCode } from '../errors.js';
import type { Keyring, KeyEncryptionKey } from '../broker.config.js';

/** A secret as stored: AES-256-GCM ciphertext, its nonce and tag, and which key sealed it. */
export interface SealedSecret {
  readonly keyId: string;
  readonly nonce: Buffer;
  readonly ciphertext: Buffer;
  readonly authTag: Buffer;
}

const NONCE_BYTES = 12; // GCM's native nonce size: no extra GHASH pass, and 96 random bits per secret
const TAG_BYTES = 16;

/**
 * Encrypts target secrets at rest. Each encryption takes a fresh random nonce; the target's name
 * is bound as additional authenticated data, so a ciphertext copied onto another target's row
 * fails to decrypt instead of handing out the wrong credential.
 */
export class SecretCipher {
  private readonly byId: ReadonlyMap<string, KeyEncryptionKey>;

  constructor(private readonly keyring: Keyring) {
    this.byId = new Map(keyring.map((k) => [k.id, k]));
  }

  /** The key new secrets are sealed under. */
  get currentKeyId(): string {
    return this.keyring[0].id;
  }

  seal(targetName: string, secret: string): SealedSecret {
    const kek = this.keyring[0];
    const nonce = randomBytes(NONCE_BYTES);
    const cipher = createCipheriv('aes-256-gcm', kek.key, nonce, { authTagLength: TAG_BYTES });
    cipher.setAAD(aadFor(targetName));
    const ciphertext = Buffer.concat([cipher.update(secret, 'utf8'), cipher.final()]);
    return { keyId: kek.id, nonce, ciphertext, authTag: cipher.getAuthTag() };
  }

  open(targetName: string, sealed: SealedSecret): string {
    const kek = this.byId.get(sealed.keyId);
    if (!kek) {
      throw new BrokerError(
        BrokerErrorCode.DecryptionFailed,
        `the secret of target '${targetName}' is encrypted under key id '${sealed.keyId}', which is not in TRACEGATE_BROKER_KEYS; add that key back to the keyring (after the current one) and run \`tracegate target rotate-keys\``,
      );
    }
    try {
      const decipher = createDecipheriv('aes-256-gcm', kek.key, sealed.nonce, { authTagLength: TAG_BYTES });
      decipher.setAAD(aadFor(targetName));
      decipher.setAuthTag(sealed.authTag);
      return Buffer.concat([decipher.update(sealed.ciphertext), decipher.final()]).toString('utf8');
    } catch (error) {
      throw new BrokerError(
        BrokerErrorCode.DecryptionFailed,
        `the secret of target '${targetName}' does not decrypt under key id '${sealed.keyId}': the key with that id is not the one it was sealed with, or the stored secret was altered; re-add the target with \`tracegate target add ${targetName} …\``,
        { cause: error },
      );
    }
  }

  /** Re-seals under the current key; returns undefined when it is already sealed under it. */
  rewrap(targetName: string, sealed: SealedSecret): SealedSecret | undefined {
    if (sealed.keyId === this.currentKeyId) return undefined;
    return this.seal(targetName, this.open(targetName, sealed));
  }
}

function aadFor(targetName: string): Buffer {
  // Versioned so the binding can change later without ambiguity.
  return Buffer.from(`tracegate.broker.target.v1\0${targetName}`, 'utf8');
}
