import { hostname } from 'node:os';
import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';
import pg from 'pg';
import { EventLogError, GENESIS, sealEvent, TOPICS, type ChainHead, type EventLog } from '@tracegate/events';
import { EVENT_LOG, SERVICE_CONTEXT, type ServiceContext } from '@tracegate/runtime';
import type { maskingV1 } from '@tracegate/contracts';
import type { MaskingProfileSpec } from '@tracegate/masking-engine';
import type { LoadedProfile } from '../domain/profile-document.js';
import { MaskingError, MaskingErrorCode } from '../domain/masking-error.js';

export const MASKING_PROFILE_ACTIVATED = 'dev.tracegate.maskingprofile.activated.v1';
const SOURCE = '/tracegate/masking';

export function profileSubject(name: string): string {
  return `maskingprofiles/${name}`;
}

export type ActivationOutcome = { readonly recorded: true; readonly sequence: number } | { readonly recorded: false };

/**
 * Records masking profile activations on the policy topic (aggregate `maskingprofile`, one chain
 * per profile, keyed by its name). The chain head and the digest in force live in the masking
 * database, so chains continue across restarts and a restart with nothing changed records
 * nothing. The head row is locked while the event is appended: two replicas link one after the other.
 */
@Injectable()
export class ProfileActivationRepository implements OnApplicationShutdown {
  private readonly pool: pg.Pool;

  constructor(
    @Inject(SERVICE_CONTEXT) context: ServiceContext,
    @Inject(EVENT_LOG) private readonly eventLog: EventLog,
  ) {
    this.pool = new pg.Pool({ connectionString: context.databaseUrl, max: 2 });
  }

  async record(profile: LoadedProfile, time: Date): Promise<ActivationOutcome> {
    const subject = profileSubject(profile.spec.name);
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      // Serialises the schema creation too: CREATE … IF NOT EXISTS races with itself.
      await client.query(`SELECT pg_advisory_xact_lock(hashtext('tracegate.masking.activation_chain'))`);
      await client.query('CREATE SCHEMA IF NOT EXISTS masking');
      await client.query(`CREATE TABLE IF NOT EXISTS masking.activation_chain (
        subject text PRIMARY KEY,
        sequence bigint NOT NULL,
        hash text NOT NULL,
        version text NOT NULL,
        digest text NOT NULL,
        source text NOT NULL,
        document jsonb NOT NULL,
        activated_at timestamptz NOT NULL
      )`);
      const { rows } = await client.query<{ sequence: string; hash: string; version: string; digest: string }>(
        'SELECT sequence, hash, version, digest FROM masking.activation_chain WHERE subject = $1 FOR UPDATE',
        [subject],
      );
      const current = rows[0];
      if (current?.digest === profile.digest) {
        await client.query('COMMIT');
        return { recorded: false };
      }
      const head: ChainHead = current ? { sequence: Number(current.sequence), hash: current.hash } : GENESIS;
      const data: maskingV1.MaskingProfileActivated = {
        name: profile.spec.name,
        version: profile.spec.version,
        previousVersion: current?.version ?? '',
        source: profile.source,
        rules: profile.spec.rules.map((rule) => rule.name),
        activatedBy: hostname(),
      };
      const event = sealEvent({ type: MASKING_PROFILE_ACTIVATED, subject, source: SOURCE, data, time }, head);
      try {
        await this.eventLog.append([{ topic: TOPICS.policy.name, key: profile.spec.name, event }]);
      } catch (error) {
        if (!(error instanceof EventLogError)) throw error;
        throw new MaskingError(
          MaskingErrorCode.EventLogUnavailable,
          `the event log did not record the activation of masking profile '${profile.spec.name}' ${profile.spec.version} (${error.message}); a profile is only put in force once it is recorded, so it will be tried again at the next change or restart`,
          { cause: error },
        );
      }
      await client.query(
        `INSERT INTO masking.activation_chain (subject, sequence, hash, version, digest, source, document, activated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (subject) DO UPDATE SET sequence = excluded.sequence, hash = excluded.hash, version = excluded.version, digest = excluded.digest,
           source = excluded.source, document = excluded.document, activated_at = excluded.activated_at`,
        [subject, event.sequence, event.hash, profile.spec.version, profile.digest, profile.source, JSON.stringify(profile.spec), time],
      );
      await client.query('COMMIT');
      return { recorded: true, sequence: event.sequence };
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    } finally {
      client.release();
    }
  }

  /** The version of a profile last put in force (by any replica, before any restart), if any. */
  async lastActivated(name: string): Promise<LoadedProfile | undefined> {
    const exists = await this.pool.query<{ present: boolean }>(`SELECT to_regclass('masking.activation_chain') IS NOT NULL AS present`);
    if (!exists.rows[0]?.present) return undefined;
    const { rows } = await this.pool.query<{ digest: string; source: string; document: MaskingProfileSpec }>(
      'SELECT digest, source, document FROM masking.activation_chain WHERE subject = $1',
      [profileSubject(name)],
    );
    const row = rows[0];
    return row ? { spec: row.document, source: row.source, digest: row.digest } : undefined;
  }

  async onApplicationShutdown(): Promise<void> {
    await this.pool.end();
  }
}
