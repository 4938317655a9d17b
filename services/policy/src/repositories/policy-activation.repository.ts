import { hostname } from 'node:os';
import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';
import pg from 'pg';
import { EventLogError, GENESIS, sealEvent, TOPICS, type ChainHead, type EventLog } from '@tracegate/events';
import { EVENT_LOG, SERVICE_CONTEXT, type ServiceContext } from '@tracegate/runtime';
import type { policyV1 } from '@tracegate/contracts';
import type { ActivePolicy } from '../domain/policy-document.js';
import { PolicyError, PolicyErrorCode } from '../domain/policy-error.js';

export const POLICY_ACTIVATED = 'dev.tracegate.policy.activated.v1';
/** One policy per deployment for now: its aggregate and its key on the policy topic. */
export const POLICY_NAME = 'default';
export const POLICY_SUBJECT = `policies/${POLICY_NAME}`;
const SOURCE = '/tracegate/policy';

export type ActivationOutcome = { readonly recorded: true; readonly sequence: number } | { readonly recorded: false };

/**
 * Records policy activations on the policy topic. The chain head (sequence, hash and the version
 * it activated) lives in the policy database, so the chain continues across restarts, and a
 * restart with the version already in force records nothing. The head row is locked while the
 * event is appended: two replicas starting together link one after the other.
 */
@Injectable()
export class PolicyActivationRepository implements OnApplicationShutdown {
  private readonly pool: pg.Pool;

  constructor(
    @Inject(SERVICE_CONTEXT) context: ServiceContext,
    @Inject(EVENT_LOG) private readonly eventLog: EventLog,
  ) {
    this.pool = new pg.Pool({ connectionString: context.databaseUrl, max: 2 });
  }

  async record(policy: ActivePolicy, time: Date): Promise<ActivationOutcome> {
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      // Serialises the schema creation too: CREATE … IF NOT EXISTS races with itself.
      await client.query(`SELECT pg_advisory_xact_lock(hashtext('tracegate.policy.activation_chain'))`);
      await client.query('CREATE SCHEMA IF NOT EXISTS policy');
      await client.query(`CREATE TABLE IF NOT EXISTS policy.activation_chain (
        subject text PRIMARY KEY,
        sequence bigint NOT NULL,
        hash text NOT NULL,
        version text NOT NULL,
        activated_at timestamptz NOT NULL
      )`);
      const { rows } = await client.query<{ sequence: string; hash: string; version: string }>(
        'SELECT sequence, hash, version FROM policy.activation_chain WHERE subject = $1 FOR UPDATE',
        [POLICY_SUBJECT],
      );
      const current = rows[0];
      if (current?.version === policy.version) {
        await client.query('COMMIT');
        return { recorded: false };
      }
      const head: ChainHead = current ? { sequence: Number(current.sequence), hash: current.hash } : GENESIS;
      const data: policyV1.PolicyActivated = {
        version: policy.version,
        previousVersion: current?.version ?? '',
        source: policy.source,
        rules: policy.document.rules.map((rule) => rule.name),
        activatedBy: hostname(),
      };
      const event = sealEvent({ type: POLICY_ACTIVATED, subject: POLICY_SUBJECT, source: SOURCE, data, time }, head);
      try {
        await this.eventLog.append([{ topic: TOPICS.policy.name, key: POLICY_NAME, event }]);
      } catch (error) {
        if (!(error instanceof EventLogError)) throw error;
        throw new PolicyError(
          PolicyErrorCode.EventLogUnavailable,
          `the event log did not record the activation of policy ${policy.version} (${error.message}); a policy is only put in force once it is recorded, so try again when the event log is available`,
          { cause: error },
        );
      }
      await client.query(
        `INSERT INTO policy.activation_chain (subject, sequence, hash, version, activated_at) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (subject) DO UPDATE SET sequence = excluded.sequence, hash = excluded.hash, version = excluded.version, activated_at = excluded.activated_at`,
        [POLICY_SUBJECT, event.sequence, event.hash, policy.version, time],
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

  async onApplicationShutdown(): Promise<void> {
    await this.pool.end();
  }
}
