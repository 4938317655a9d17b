import { sign, verify, type KeyObject } from 'node:crypto';
import { canonicalJson, type CloudEvent } from '@tracegate/events';

export const CHECKPOINT_EVENT_TYPE = 'dev.tracegate.checkpoint.signed.v1';
/** Every checkpoint is one event of this one aggregate, so the checkpoints are a hash chain too. */
export const CHECKPOINT_SUBJECT = 'session-checkpoints';

/** Where one session's chain stood when the checkpoint was signed. */
export interface CheckpointHead {
  readonly sessionId: string;
  readonly sequence: number;
  readonly hash: string;
}

/** What is signed. */
export interface CheckpointBody {
  readonly checkpointId: string;
  /** The previous checkpoint's id, '' for the first: a removed checkpoint shows as a broken link. */
  readonly previousCheckpointId: string;
  readonly keyId: string;
  readonly signedAt: string;
  /** The sessions that moved since the previous checkpoint, each at its newest projected event. */
  readonly heads: readonly CheckpointHead[];
}

/** The data of a dev.tracegate.checkpoint.signed.v1 event. */
export interface CheckpointData extends CheckpointBody {
  /** Ed25519 over the canonical JSON of the body, base64. */
  readonly signature: string;
}

export function signCheckpoint(body: CheckpointBody, privateKey: KeyObject): CheckpointData {
  const signature = sign(null, Buffer.from(canonicalJson(body)), privateKey).toString('base64');
  return { ...body, signature };
}

/** Problems with a checkpoint event itself: malformed, signed by another key, or a signature that does not verify. */
export function checkpointProblems(event: CloudEvent, publicKey: KeyObject | undefined, keyId: string | undefined): string[] {
  const data = event.data as Partial<CheckpointData> | null;
  if (!data || typeof data !== 'object' || typeof data.signature !== 'string' || !Array.isArray(data.heads)) {
    return [`checkpoint event ${event.id} is malformed: it has no signature or heads`];
  }
  const { signature, ...body } = data as CheckpointData;
  if (!publicKey) return [];
  if (data.keyId !== keyId) return [`checkpoint ${data.checkpointId} was signed by key ${String(data.keyId)}, not by this service's checkpoint key ${keyId}`];
  const ok = verify(null, Buffer.from(canonicalJson(body)), publicKey, Buffer.from(signature, 'base64'));
  return ok ? [] : [`checkpoint ${data.checkpointId} does not verify against checkpoint key ${keyId}: the checkpoint was altered or forged`];
}
