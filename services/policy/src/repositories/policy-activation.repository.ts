import { hostname } from 'node:os';
import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';
import pg from 'pg';
import { EventLogError, GENESIS, sealEvent, TOPICS, type ChainHead, type EventLog } from '@tracegate/events';
import { EVENT_LOG, SERVICE_CONTEXT, type ServiceContext } from '@tracegate/runtime';
import type { policyV1 } from '@tracegate/contracts';
import { policyChanges, policyDefinition, type PolicyChanges } from '../domain/policy-changes.js';
import type { ActivePolicy } from '../domain/policy-document.js';
import { PolicyError, PolicyErrorCode } from '../domain/policy-error.js';

export const POLICY_ACTIVATED = 'dev.tracegate.policy.activated.v1';
/** One policy per deployment for now: its aggregate and its key on the policy topic. */
export const POLICY_NAME = 'default';
export const POLICY_SUBJECT = `policies/${POLICY_NAME}`;
const SOURCE = '/tracegate/policy';

export type ActivationOutcome =
  | { readonly recorded: true; readonly sequence: number; readonly changes: PolicyChanges }
  | { readonly recorded: false };

/** Who published a version through the API, and why. */
export interface Publication {
  readonly author: string;
  readonly comment: string;
}

/** One version as recorded in policy.versions. */
export interface RecordedVersion {
  readonly sequence: number;
  readonly version: string;
  readonly previousVersion: string;
  readonly source: string;
  readonly author: string;
  readonly comment: string;
  readonly activatedAt: Date;
  readonly rules: readonly string[];
  readonly changes: PolicyChanges;
  readonly document: string;
}

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

  private schemaReady: Promise<void> | undefined;

  /** Creates the schema once per process, under a lock: CREATE … IF NOT EXISTS races with itself. */
  private ensureSchema(): Promise<void> {
    this.schemaReady ??= (async () => {
      const client = await this.pool.connect();
      try {
        await client.query('BEGIN');
        await client.query(`SELECT pg_advisory_xact_lock(hashtext('tracegate.policy.activation_chain'))`);
        await client.query('CREATE SCHEMA IF NOT EXISTS policy');
        await client.query(`CREATE TABLE IF NOT EXISTS policy.activation_chain (
          subject text PRIMARY KEY,
          sequence bigint NOT NULL,
          hash text NOT NULL,
          version text NOT NULL,
          activated_at timestamptz NOT NULL
        )`);
        // Every version put in force, with its document: what ListPolicyVersions reads, and what a
        // restart without a policy file puts back in force when the last one was published.
        await client.query(`CREATE TABLE IF NOT EXISTS policy.versions (
          sequence bigint PRIMARY KEY,
          version text NOT NULL,
          previous_version text NOT NULL,
          source text NOT NULL,
          author text NOT NULL,
          comment text NOT NULL,
          activated_at timestamptz NOT NULL,
          rules jsonb NOT NULL,
          changes jsonb NOT NULL,
          document text NOT NULL,
          definition text NOT NULL
        )`);
        await client.query('COMMIT');
      } catch (error) {
        await client.query('ROLLBACK').catch(() => undefined);
        this.schemaReady = undefined;
        throw error;
      } finally {
        client.release();
      }
    })();
    return this.schemaReady;
  }

  async record(policy: ActivePolicy, time: Date, publication?: Publication): Promise<ActivationOutcome> {
    await this.ensureSchema();
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      await client.query(`SELECT pg_advisory_xact_lock(hashtext('tracegate.policy.activation_chain'))`);
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
      const previous = await client.query<{ definition: string }>('SELECT definition FROM policy.versions ORDER BY sequence DESC LIMIT 1');
      const changes = policyChanges(previous.rows[0]?.definition, policy.document);
      const data: policyV1.PolicyActivated = {
        version: policy.version,
        previousVersion: current?.version ?? '',
        source: policy.source,
        rules: policy.document.rules.map((rule) => rule.name),
        activatedBy: hostname(),
        author: publication?.author ?? '',
        comment: publication?.comment ?? '',
        changes: { ...changes, addedRules: [...changes.addedRules], removedRules: [...changes.removedRules], changedRules: [...changes.changedRules] },
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
      await client.query(
        `INSERT INTO policy.versions (sequence, version, previous_version, source, author, comment, activated_at, rules, changes, document, definition)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
        [
          event.sequence,
          policy.version,
          data.previousVersion,
          policy.source,
          data.author,
          data.comment,
          time,
          JSON.stringify(data.rules),
          JSON.stringify(changes),
          policy.text,
          policyDefinition(policy.document),
        ],
      );
      await client.query('COMMIT');
      return { recorded: true, sequence: event.sequence, changes };
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    } finally {
      client.release();
    }
  }

  /** The versions put in force, newest first. */
  async list(limit: number): Promise<RecordedVersion[]> {
    await this.ensureSchema();
    const { rows } = await this.pool.query<{
      sequence: string;
      version: string;
      previous_version: string;
      source: string;
      author: string;
      comment: string;
      activated_at: Date;
      rules: string[];
      changes: PolicyChanges;
      document: string;
    }>(
      `SELECT sequence, version, previous_version, source, author, comment, activated_at, rules, changes, document
       FROM policy.versions ORDER BY sequence DESC LIMIT $1`,
      [limit],
    );
    return rows.map((row) => ({
      sequence: Number(row.sequence),
      version: row.version,
      previousVersion: row.previous_version,
      source: row.source,
      author: row.author,
      comment: row.comment,
      activatedAt: row.activated_at,
      rules: row.rules,
      changes: row.changes,
      document: row.document,
    }));
  }

  /** The last version put in force, when it was published through the API (else undefined). */
  async lastPublished(): Promise<RecordedVersion | undefined> {
    const [last] = await this.list(1);
    return last && last.author !== '' ? last : undefined;
  }

  async onApplicationShutdown(): Promise<void> {
    await this.pool.end();
  }
}
