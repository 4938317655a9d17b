import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes, randomUUID, verify } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import pg from 'pg';
import { auditService } from '@tracegate/audit';
import { GatewaySessionScript } from '@tracegate/audit/domain/session-events.testing';
import { checkpointKeyOf } from '@tracegate/audit/integrity.config';
import { canonicalJson, cloudEventProblems, TOPICS, verifyChain, type CloudEvent } from '@tracegate/events';
import { startServices, type RunningProcess } from '@tracegate/runtime';
import { expectEventually, freePort, startKafka, startPostgres, type KafkaBroker, type PostgresServer } from '@tracegate/test-harness';

const run = promisify(execFile);

interface KcatRecord {
  readonly key: string;
  readonly headers: string;
  readonly event: CloudEvent;
}

/** What a SIEM's collector does: read a topic from the beginning with kcat, one record per line. */
async function kcat(brokers: string, topic: string): Promise<KcatRecord[]> {
  const { stdout } = await run('kcat', ['-C', '-b', brokers, '-t', topic, '-o', 'beginning', '-e', '-q', '-f', '%k\t%h\t%s\n'], { maxBuffer: 64 * 1024 * 1024 }).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') throw new Error('this test reads topics with kcat: apt-get install kcat');
    throw error;
  });
  return stdout
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [key, headers, ...value] = line.split('\t');
      return { key: key!, headers: headers!, event: JSON.parse(value.join('\t')) as CloudEvent };
    });
}

describe('SIEM: the topics read with kcat from a real Kafka are CloudEvents with intact chains and verifiable checkpoints', () => {
  let kafka: KafkaBroker;
  let postgres: PostgresServer;
  let proc: RunningProcess;
  let db: pg.Client;
  const seed = randomBytes(32).toString('base64');
  const scripts = [
    new GatewaySessionScript(randomUUID(), Date.parse('2026-11-22T04:00:00Z'))
      .started({ identityName: 'ci-agent', target: 'billing' })
      .requested('k1', "SELECT * FROM invoices WHERE note = 'tab\there'")
      .completed('k1', { commandTag: 'SELECT 3', rows: 3 })
      .ended(),
    new GatewaySessionScript(randomUUID(), Date.parse('2026-11-22T04:01:00Z'))
      .started({ identityName: 'alice', identityKind: 'human', target: 'reporting' })
      .requested('k2', 'DROP TABLE invoices', { effect: 'deny', rule: 'no-ddl', reason: 'agents may not change the schema' })
      .completed('k2', { sqlstate: '42501', errorMessage: 'agents may not change the schema' }),
  ];

  before(async () => {
    [kafka, postgres] = await Promise.all([startKafka(), startPostgres()]);
    const databaseUrl = await postgres.createDatabase();
    proc = await startServices([auditService], {
      component: 'tracegate siem test',
      databaseUrl,
      env: {
        KAFKA_BROKERS: kafka.brokers,
        TRACEGATE_AUDIT_GRPC_PORT: String(await freePort()),
        TRACEGATE_AUDIT_METRICS_PORT: String(await freePort()),
        TRACEGATE_INTERNAL_TOKEN: randomBytes(32).toString('base64url'),
        TRACEGATE_AUDIT_CHECKPOINT_KEY: seed,
        TRACEGATE_AUDIT_CHECKPOINT_INTERVAL_MS: '200',
        TRACEGATE_LOG_LEVEL: 'silent',
      },
    });
    db = new pg.Client({ connectionString: databaseUrl });
    await db.connect();
    for (const script of scripts) await proc.eventLog.append(script.records());
    // The audit service projects them and signs a checkpoint over both sessions onto tracegate.audit.v1.
    await expectEventually(
      async () => {
        const { rows } = await db.query(`SELECT DISTINCT session_id FROM audit.checkpoint_heads`);
        assert.equal(rows.length, scripts.length);
      },
      { timeoutMs: 60_000, description: 'a checkpoint over both sessions' },
    );
  });

  after(async () => {
    await db?.end();
    await proc?.stop();
    await Promise.all([kafka?.stop(), postgres?.stop()]);
  });

  it('reads every session event as a structured-mode CloudEvent keyed by its session, each session one intact chain', async () => {
    const records = await kcat(kafka.brokers, TOPICS.sessions.name);
    assert.equal(records.length, scripts.reduce((n, s) => n + s.events.length, 0));
    for (const { key, headers, event } of records) {
      assert.deepEqual(cloudEventProblems(event), [], `record ${event.id} is a valid CloudEvent`);
      assert.equal(key, event.subject, 'the record key is the session id');
      assert.match(headers, /(^|,)content-type=application\/cloudevents\+json(,|$)/);
      assert.match(event.type, /^dev\.tracegate\.session\.[a-z_]+\.v1$/);
    }
    for (const script of scripts) {
      const events = records.filter((r) => r.key === script.sessionId).map((r) => r.event);
      assert.deepEqual(events, script.events, 'byte for byte what the gateway appended, in order');
      assert.deepEqual(verifyChain(events), []);
    }
  });

  it('reads the signed checkpoint, whose Ed25519 signature verifies with the public key and whose heads are the sessions\' last hashes', async () => {
    const records = await kcat(kafka.brokers, TOPICS.audit.name);
    const checkpoints = records.filter((r) => r.event.type === 'dev.tracegate.checkpoint.signed.v1');
    assert.ok(checkpoints.length >= 1);
    assert.deepEqual(verifyChain(checkpoints.map((c) => c.event)), [], 'the checkpoints are one chain');
    const { publicKey, keyId } = checkpointKeyOf(seed);
    const heads = new Map<string, { sequence: number; hash: string }>();
    for (const { key, event } of checkpoints) {
      assert.deepEqual(cloudEventProblems(event), []);
      assert.equal(key, 'session-checkpoints');
      const { signature, ...body } = event.data as { signature: string; keyId: string; heads: { sessionId: string; sequence: number; hash: string }[] };
      assert.equal(body.keyId, keyId);
      assert.ok(verify(null, Buffer.from(canonicalJson(body)), publicKey, Buffer.from(signature, 'base64')), `checkpoint ${event.id} verifies`);
      for (const head of body.heads) heads.set(head.sessionId, head);
    }
    for (const script of scripts) {
      const last = script.events.at(-1)!;
      assert.deepEqual(heads.get(script.sessionId), { sessionId: script.sessionId, sequence: last.sequence, hash: last.hash });
    }
  });
});
