import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { runCli } from '../testing/run-cli.js';
import { auditService } from '@tracegate/audit';
import { brokerService } from '@tracegate/broker';
import { GatewaySessionScript } from '@tracegate/audit/domain/session-events.testing';
import { startServices, type RunningProcess } from '@tracegate/runtime';
import { expectEventually, freePort, startPostgres, type PostgresServer } from '@tracegate/test-harness';

const TOKEN = randomBytes(32).toString('base64url');

const tracegate = runCli;

describe('tracegate sessions against a running audit service', () => {
  let postgres: PostgresServer;
  let proc: RunningProcess;
  let home: string;
  let databaseUrl: string;
  let cli: Record<string, string>;

  const alice = new GatewaySessionScript(randomUUID(), Date.parse('2026-11-22T01:00:00Z'))
    .started({ identityId: 'key-alice', identityName: 'alice', identityKind: 'human', target: 'billing', applicationName: 'psql', clientAddress: '10.0.3.7:51422' })
    .requested('a1', 'SELECT id,\n       total\n  FROM invoices')
    .completed('a1', { commandTag: 'SELECT 2', rows: 2 })
    .requested('a2', 'DELETE FROM invoices', { effect: 'deny', rule: 'no-deletes', reason: 'deleting invoices is not allowed' })
    .completed('a2', { sqlstate: '42501', errorMessage: 'deleting invoices is not allowed' })
    .requested('a3', 'SELECT 1', {}, { inMultiStatement: true })
    .completed('a3', { executed: false })
    .requested('a4', 'SELECT pg_sleep(600)')
    .ended('client terminated');
  const agent = new GatewaySessionScript(randomUUID(), Date.parse('2026-11-22T01:30:00Z'))
    .started({ identityName: 'ci-agent', target: 'reporting' })
    .requested('r1', 'UPDATE reports SET done = true', { rule: 'agent-writes-reviewed', approvalRequestId: 'req-9', approvalState: 'approved' }, { traceId: 't-77' })
    .completed('r1', { commandTag: 'UPDATE 1', rows: 1 });

  before(async () => {
    postgres = await startPostgres();
    const grpcPort = String(await freePort());
    const brokerPort = String(await freePort());
    databaseUrl = await postgres.createDatabase();
    proc = await startServices([brokerService, auditService], {
      component: 'tracegate cli test',
      databaseUrl,
      env: {
        TRACEGATE_BROKER_GRPC_PORT: brokerPort,
        TRACEGATE_BROKER_METRICS_PORT: String(await freePort()),
        TRACEGATE_BROKER_KEYS: `k1:${randomBytes(32).toString('base64')}`,
        TRACEGATE_AUDIT_GRPC_PORT: grpcPort,
        TRACEGATE_AUDIT_METRICS_PORT: String(await freePort()),
        TRACEGATE_INTERNAL_TOKEN: TOKEN,
        TRACEGATE_LOG_LEVEL: 'silent',
      },
    });
    home = await mkdtemp(path.join(tmpdir(), 'tracegate-cli-'));
    cli = { TRACEGATE_AUDIT_GRPC_PORT: grpcPort, TRACEGATE_BROKER_GRPC_PORT: brokerPort, TRACEGATE_INTERNAL_TOKEN: TOKEN, TRACEGATE_HOME: home };
    await proc.eventLog.append([...alice.records(), ...agent.records()]);
  });

  after(async () => {
    await proc?.stop();
    await postgres?.stop();
    if (home) await rm(home, { recursive: true, force: true });
  });

  it('lists sessions newest first as a table, filtered by target or identity, and as JSON', async () => {
    await expectEventually(
      async () => {
        const list = await tracegate(['sessions', 'list'], cli);
        assert.equal(list.code, 0, list.stderr);
        const [header, ...rows] = list.stdout.trimEnd().split('\n');
        assert.match(header!, /^ID\s+IDENTITY\s+TARGET\s+STARTED\s+ENDED\s+STATEMENTS$/);
        assert.equal(rows.length, 2);
        assert.match(rows[0]!, new RegExp(`^${agent.sessionId}\\s+ci-agent\\s+reporting\\s+2026-11-22T01:30:00Z\\s+open\\s+1$`));
        assert.match(rows[1]!, new RegExp(`^${alice.sessionId}\\s+alice\\s+billing\\s+2026-11-22T01:00:00Z\\s+2026-11-22T01:00:00Z\\s+4$`));
      },
      { description: 'both sessions projected and listed' },
    );

    const billing = await tracegate(['sessions', 'list', '--target', 'billing'], cli);
    assert.deepEqual(billing.stdout.trimEnd().split('\n').slice(1).map((r) => r.split(/\s+/)[0]), [alice.sessionId]);
    const agents = await tracegate(['sessions', 'list', '--identity', 'ci-agent', '--limit', '5'], cli);
    assert.deepEqual(agents.stdout.trimEnd().split('\n').slice(1).map((r) => r.split(/\s+/)[0]), [agent.sessionId]);
    const none = await tracegate(['sessions', 'list', '--identity', 'mallory'], cli);
    assert.equal(none.code, 0);
    assert.match(none.stdout, /^no sessions recorded matching these filters/);

    const json = await tracegate(['sessions', 'list', '--json', '--limit', '1'], cli);
    assert.equal(json.code, 0, json.stderr);
    const parsed = JSON.parse(json.stdout) as { sessions: { id: string; identityName: string; target: string; startedAt: string; endedAt?: string }[] };
    assert.deepEqual(parsed.sessions.map((s) => [s.id, s.identityName, s.target, s.startedAt, s.endedAt]), [[agent.sessionId, 'ci-agent', 'reporting', '2026-11-22T01:30:00.005Z', undefined]]);
  });

  it("shows a session's facts, then each statement in order with its decision and outcome", async () => {
    const show = await tracegate(['sessions', 'show', alice.sessionId], cli);
    assert.equal(show.code, 0, show.stderr);
    const [facts, statements] = show.stdout.split('\n\n');
    assert.deepEqual(facts!.split('\n').map((l) => l.split(/\s{2,}/)), [
      ['session', alice.sessionId],
      ['identity', 'alice (human, key key-alice)'],
      ['target', 'billing (postgres)'],
      ['client', '10.0.3.7:51422 (psql)'],
      ['lease', '019a9d7e-0000-7000-8000-000000000001'],
      ['started', '2026-11-22T01:00:00Z'],
      ['ended', '2026-11-22T01:00:00Z (client terminated)'],
      ['statements', '4'],
    ]);
    assert.deepEqual(statements!.trimEnd().split('\n').map((l) => l.split(/\s{2,}/)), [
      ['SEQ', 'DECISION', 'OUTCOME', 'STATEMENT'],
      ['1', 'allow (read-only)', 'SELECT 2 (2 rows)', 'SELECT id, total FROM invoices'],
      ['2', 'deny (no-deletes)', 'error 42501: deleting invoices is not allowed', 'DELETE FROM invoices'],
      ['3', 'allow (read-only)', 'not run', 'SELECT 1'],
      ['4', 'allow (read-only)', 'no outcome yet', 'SELECT pg_sleep(600)'],
    ]);

    const json = await tracegate(['sessions', 'show', alice.sessionId, '--json'], cli);
    assert.equal(json.code, 0, json.stderr);
    const parsed = JSON.parse(json.stdout) as { session: { id: string; endReason: string }; statements: { sequence: number; maskedText: string; effect: string; sqlstate?: string; completed?: boolean }[] };
    assert.equal(parsed.session.endReason, 'client terminated');
    assert.deepEqual(parsed.statements.map((s) => [s.sequence, s.effect, s.sqlstate ?? '', s.completed ?? false]), [
      [1, 'allow', '', true],
      [2, 'deny', '42501', true],
      [3, 'allow', '', true],
      [4, 'allow', '', false],
    ]);
    assert.equal(parsed.statements[0]!.maskedText, 'SELECT id,\n       total\n  FROM invoices', 'JSON keeps the text as recorded');
  });

  it('says what went wrong: an unknown session, a bad flag, a wrong token, no audit service', async () => {
    const unknown = await tracegate(['sessions', 'show', 'nope'], cli);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /^tracegate: no session has id 'nope'; run `tracegate sessions list`/);

    const badLimit = await tracegate(['sessions', 'list', '--limit', 'lots'], cli);
    assert.equal(badLimit.code, 2);
    assert.match(badLimit.stderr, /--limit 'lots' is not a whole number from 1 to 1000[\s\S]*usage:/);
    const noId = await tracegate(['sessions', 'show'], cli);
    assert.equal(noId.code, 2);
    assert.match(noId.stderr, /expected one session id, got none/);

    const wrongToken = await tracegate(['sessions', 'list'], { ...cli, TRACEGATE_INTERNAL_TOKEN: `${TOKEN}x` });
    assert.equal(wrongToken.code, 1);
    assert.match(wrongToken.stderr, /needs the audit's internal token .*it was wrong/);

    const away = await tracegate(['sessions', 'list'], { ...cli, TRACEGATE_AUDIT_ADDRESS: `127.0.0.1:${await freePort()}` });
    assert.equal(away.code, 1);
    assert.match(away.stderr, /cannot reach the audit service at 127\.0\.0\.1:\d+ .*Set TRACEGATE_AUDIT_ADDRESS/);
  });

  it('replays a session in order with each statement\'s offset, decision and outcome, and as one JSON object per line', async () => {
    const played = await tracegate(['sessions', 'replay', alice.sessionId], cli);
    assert.equal(played.code, 0, played.stderr);
    assert.equal(played.stderr, '', 'no progress line when stdout is not a terminal');
    assert.deepEqual(played.stdout.trimEnd().split('\n').map((l) => l.trim().split(/\s{2,}/)), [
      ['+0.000s', '#1', 'allow (read-only)', 'SELECT 2 (2 rows)', 'SELECT id, total FROM invoices'],
      ['+0.015s', '#2', 'deny (no-deletes) — deleting invoices is not allowed', 'error 42501: deleting invoices is not allowed', 'DELETE FROM invoices'],
      ['+0.030s', '#3', 'allow (read-only)', 'not run', 'SELECT 1'],
      ['+0.045s', '#4', 'allow (read-only)', 'no outcome yet', 'SELECT pg_sleep(600)'],
    ]);
    const reviewed = await tracegate(['sessions', 'replay', agent.sessionId], cli);
    assert.deepEqual(reviewed.stdout.trimEnd().split('\n').map((l) => l.trim().split(/\s{2,}/)), [
      ['+0.000s', '#1', 'allow (agent-writes-reviewed), review req-9 approved', 'UPDATE 1 (1 row)', 'UPDATE reports SET done = true', '[trace t-77]'],
      // With the internal token, traces cannot be read: the line says how to see it.
      ["trace t-77 (to see it, set TRACEGATE_API_KEY to a reader's key with a grant: tracegate grants create)"],
    ]);
    const json = await tracegate(['sessions', 'replay', alice.sessionId, '--json', '--real-time'], cli);
    assert.equal(json.code, 0, json.stderr);
    const lines = json.stdout.trimEnd().split('\n').map((l) => JSON.parse(l) as { sequence: number; effect: string; at: string });
    assert.deepEqual(lines.map((l) => [l.sequence, l.effect]), [[1, 'allow'], [2, 'deny'], [3, 'allow'], [4, 'allow']]);
    assert.equal(lines[1]!.at, '2026-11-22T01:00:00.025Z');
    const both = await tracegate(['sessions', 'replay', alice.sessionId, '--real-time', '--instant'], cli);
    assert.equal(both.code, 2);
    assert.match(both.stderr, /--real-time and --instant contradict each other/);
    const unknown = await tracegate(['sessions', 'replay', 'nope'], cli);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /^tracegate: no session has id 'nope'/);
  });

  it('verifies a session: intact exits 0, a changed row exits 1 naming the statement and field', async () => {
    const intact = await tracegate(['sessions', 'verify', alice.sessionId], cli);
    assert.equal(intact.code, 0, intact.stderr);
    assert.equal(intact.stdout, `session ${alice.sessionId} is intact: ${alice.events.length} events checked (hash chain, sequence, projected rows, signed checkpoints)\n`);
    const db = new pg.Client({ connectionString: databaseUrl });
    await db.connect();
    try {
      await db.query(`UPDATE audit.statements SET rows = 99 WHERE session_id = $1 AND statement_id = 'a1'`, [alice.sessionId]);
    } finally {
      await db.end();
    }
    const tampered = await tracegate(['sessions', 'verify', alice.sessionId], cli);
    assert.equal(tampered.code, 1);
    assert.equal(
      tampered.stdout,
      `session ${alice.sessionId} FAILED verification: 1 problem in ${alice.events.length} events\n  - statement 1 (id a1): rows is 99 in the projection but 2 on the log\n`,
    );
    const json = await tracegate(['sessions', 'verify', alice.sessionId, '--json'], cli);
    assert.equal(json.code, 1);
    assert.deepEqual(JSON.parse(json.stdout), {
      id: alice.sessionId,
      intact: false,
      eventsChecked: alice.events.length,
      problems: ['statement 1 (id a1): rows is 99 in the projection but 2 on the log'],
    });
  });

  it('rebuilds the audit projection from the log and keeps answering the same sessions', async () => {
    const before = await tracegate(['sessions', 'list', '--json'], cli);
    const rebuilt = await tracegate(['audit', 'rebuild'], cli);
    assert.equal(rebuilt.code, 0, rebuilt.stderr);
    assert.equal(rebuilt.stderr, '', 'no progress line when stdout is not a terminal');
    const events = alice.events.length + agent.events.length;
    assert.match(rebuilt.stdout, new RegExp(`^rebuilt the audit projection from the log: ${events} events replayed, 2 sessions; now on generation [0-9a-f-]{36}\\n$`));
    const after = await tracegate(['sessions', 'list', '--json'], cli);
    assert.deepEqual(JSON.parse(after.stdout), JSON.parse(before.stdout));
    const json = await tracegate(['audit', 'rebuild', '--json'], cli);
    assert.equal(json.code, 0, json.stderr);
    assert.deepEqual(Object.keys(JSON.parse(json.stdout) as object), ['generation', 'eventsProjected', 'sessions']);
  });

  it('lets an identity with its API key read only the sessions its reader grants cover, records each read, and refuses an expired grant', async () => {
    const created = await tracegate(['key', 'create', '--name', 'auditor', '--kind', 'human'], cli);
    assert.equal(created.code, 0, created.stderr);
    const apiKey = /^(tg_\S+)$/m.exec(created.stdout)?.[1];
    assert.ok(apiKey, created.stdout);
    const auditor = { ...cli, TRACEGATE_API_KEY: apiKey, TRACEGATE_IDENTITY: 'auditor' };

    const none = await tracegate(['sessions', 'show', alice.sessionId], auditor);
    assert.equal(none.code, 1);
    assert.match(none.stderr, new RegExp(`^tracegate: identity 'auditor' holds no reader grant for agent 'alice' or target 'billing', so it may not read session ${alice.sessionId}; an administrator can grant it: \`tracegate grants create --reader auditor --agent alice --expires-in 1h\``));

    const granted = await tracegate(['grants', 'create', '--reader', 'auditor', '--agent', 'alice', '--expires-in', '1h', '--reason', 'INC-42'], cli);
    assert.equal(granted.code, 0, granted.stderr);
    const show = await tracegate(['sessions', 'show', alice.sessionId], auditor);
    assert.equal(show.code, 0, show.stderr);
    assert.match(show.stdout, /^session {4}/);
    const replay = await tracegate(['sessions', 'replay', alice.sessionId, '--json'], auditor);
    assert.equal(replay.code, 0, replay.stderr);
    const list = await tracegate(['sessions', 'list'], auditor);
    assert.deepEqual(list.stdout.trimEnd().split('\n').slice(1).map((r) => r.split(/\s+/)[0]), [alice.sessionId], "only alice's session, not the agent's");
    const other = await tracegate(['sessions', 'show', agent.sessionId], auditor);
    assert.equal(other.code, 1);
    assert.match(other.stderr, /holds no reader grant for agent 'ci-agent' or target 'reporting'/);
    const verify = await tracegate(['sessions', 'verify', alice.sessionId], { ...auditor, TRACEGATE_INTERNAL_TOKEN: 'not-the-token-but-long-enough-0123456789' });
    assert.equal(verify.code, 1, 'verification needs the internal token, whatever the API key');

    // Every read and refusal is on tracegate.audit.v1, in the reader's chain.
    const db = new pg.Client({ connectionString: databaseUrl });
    await db.connect();
    try {
      await expectEventually(async () => {
        const { rows } = await db.query<{ type: string; id: string }>(
          `SELECT event->>'type' AS type, event->'data'->>'id' AS id FROM tracegate_log.events WHERE topic = 'tracegate.audit.v1' AND key = 'auditor' AND event->'data'->>'kind' = 'session' ORDER BY position`,
        );
        assert.deepEqual(rows.map((r) => [r.type.split('.')[3], r.id]), [
          ['refused', alice.sessionId],
          ['read', alice.sessionId],
          ['read', alice.sessionId],
          ['read', alice.sessionId],
          ['refused', agent.sessionId],
        ]);
      });
    } finally {
      await db.end();
    }

    const brief = await tracegate(['grants', 'create', '--reader', 'auditor', '--target', 'reporting', '--expires-in', '1s'], cli);
    assert.equal(brief.code, 0, brief.stderr);
    await new Promise((resolve) => setTimeout(resolve, 1200));
    const expired = await tracegate(['sessions', 'show', agent.sessionId], auditor);
    assert.equal(expired.code, 1);
    assert.match(expired.stderr, /expired at \d{4}-\d\d-\d\dT/);
  });

  it('shows and replays the masked parameters, masking hits and the first recorded result rows under each statement, with how many were recorded', async () => {
    const masked = new GatewaySessionScript(randomUUID(), Date.parse('2026-11-22T02:00:00Z'))
      .started({ identityName: 'ci-agent', target: 'crm' })
      .requested('m1', 'SELECT id, email FROM customers WHERE region = $1', {}, { protocol: 'extended', parameterCount: 1, parameters: ["<masked:o'hare>"] })
      .result('m1', 0, [['1', '<email:7f3a>'], ['2', null], ['3', '<email:0d4e>']], ['id', 'email'])
      .result('m1', 1, [['4', '<email:11aa>'], ['5', '<email:22bb>'], ['6', '<email:33cc>']])
      .completed('m1', { commandTag: 'SELECT 240', rows: 240, masked: { email: 5 } })
      .requested('m2', 'SELECT 1')
      .completed('m2', { commandTag: 'SELECT 1', rows: 1 });
    await proc.eventLog.append(masked.records());
    await expectEventually(async () => {
      const show = await tracegate(['sessions', 'show', masked.sessionId, '--json'], cli);
      assert.equal((JSON.parse(show.stdout) as { statements: unknown[] }).statements.length, 2);
    });

    const show = await tracegate(['sessions', 'show', masked.sessionId], cli);
    assert.equal(show.code, 0, show.stderr);
    const blocks = show.stdout.trimEnd().split('\n\n');
    assert.equal(blocks.length, 3, 'facts, the statements, and the one statement with details');
    assert.deepEqual(blocks[2]!.split('\n'), [
      '#1  SELECT id, email FROM customers WHERE region = $1',
      "  parameters: $1 = '<masked:o''hare>'",
      '  masked: email ×5',
      '  id  email',
      '  1   <email:7f3a>',
      '  2   NULL',
      '  3   <email:0d4e>',
      '  4   <email:11aa>',
      '  5   <email:22bb>',
      '  (6 of 240 rows recorded; 1 more not shown here, --json has them)',
    ]);

    const replayed = await tracegate(['sessions', 'replay', masked.sessionId], cli);
    assert.equal(replayed.code, 0, replayed.stderr);
    const lines = replayed.stdout.trimEnd().split('\n');
    assert.match(lines[0]!, /#1 {2}allow \(read-only\) {2}SELECT 240 \(240 rows\)/);
    assert.deepEqual(lines.slice(1, 4).map((l) => l.trim()), ["parameters: $1 = '<masked:o''hare>'", 'masked: email ×5', 'id  email']);
    assert.equal(lines[9]!.trim(), '(6 of 240 rows recorded; 1 more not shown here, --json has them)');
    assert.match(lines[10]!, /#2 {2}allow \(read-only\) {2}SELECT 1 \(1 row\)/);
    assert.equal(lines.length, 11);

    const json = await tracegate(['sessions', 'replay', masked.sessionId, '--json'], cli);
    assert.equal(json.code, 0, json.stderr);
    const [first, second] = json.stdout.trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.deepEqual(
      [first!.resultColumns, first!.rowsRecorded, first!.masked, first!.parameters, first!.resultRows],
      [
        ['id', 'email'],
        6,
        { email: 5 },
        [{ text: "<masked:o'hare>" }],
        [['1', '<email:7f3a>'], ['2', null], ['3', '<email:0d4e>'], ['4', '<email:11aa>'], ['5', '<email:22bb>'], ['6', '<email:33cc>']].map((row) => ({ values: row.map((text) => (text === null ? {} : { text })) })),
      ],
    );
    assert.equal(second!.resultRows, undefined, 'a statement without recorded rows has none');
  });
  it('shows, replays and verifies an SSH session: each command after a prompt, its masked output lines with stderr marked, its exit status, decision and trace', async () => {
    const ssh = new GatewaySessionScript(randomUUID(), Date.parse('2026-11-22T03:00:00Z'))
      .started({ identityName: 'ops-agent', target: 'web-1', protocol: 'ssh', applicationName: 'OpenSSH_9.2p1', clientAddress: '10.0.3.9:40022' })
      .requested('c1', 'uname -a', { rule: 'read-only-commands' }, { protocol: 'ssh-exec', traceId: 't-ssh' })
      .result('c1', 0, [['stdout', 'Linux web-1 6.1.0-13-amd64 x86_64 GNU/Linux']], ['stream', 'text'])
      .completed('c1', { commandTag: 'exit 0', rows: 1 })
      .requested('c2', 'cat /etc/app/env /etc/app/extra', { rule: 'read-only-commands' }, { protocol: 'ssh-exec' })
      .result('c2', 0, [['stdout', 'DB_HOST=db1'], ['stdout', 'DB_PASSWORD=<secret:9f2c>'], ['stderr', 'cat: /etc/app/extra: No such file or directory']], ['stream', 'text'])
      // A target's output may carry terminal escapes; a replay must not pass them to the reader's terminal.
      .result('c2', 1, [['stdout', '\u001b]0;owned\u0007\tdone'], ['stdout', 'line 5'], ['stdout', 'line 6']])
      .completed('c2', { commandTag: 'exit 1', rows: 6, masked: { secret: 1 } })
      .requested('c3', 'rm -rf /var/lib/app', { effect: 'deny', rule: 'no-recursive-deletes', reason: 'recursive deletes are not allowed on web hosts' }, { protocol: 'ssh-exec' })
      .completed('c3', { commandTag: 'refused', errorMessage: 'recursive deletes are not allowed on web hosts', executed: false })
      .requested('c4', 'sleep 600', { rule: 'read-only-commands' }, { protocol: 'ssh-exec' })
      .completed('c4', { commandTag: 'signal TERM', rows: 0 })
      .requested('c5', 'sftp', { rule: 'file-transfer' }, { protocol: 'ssh-subsystem' })
      .completed('c5', { commandTag: 'exit 0', rows: 0 })
      .ended('client disconnected');
    await proc.eventLog.append(ssh.records());
    await expectEventually(async () => {
      const show = await tracegate(['sessions', 'show', ssh.sessionId, '--json'], cli);
      assert.equal((JSON.parse(show.stdout) as { statements: unknown[] }).statements.length, 5);
    });

    const show = await tracegate(['sessions', 'show', ssh.sessionId], cli);
    assert.equal(show.code, 0, show.stderr);
    const [facts, statements, ...details] = show.stdout.trimEnd().split('\n\n');
    assert.deepEqual(facts!.split('\n').slice(1, 4).map((l) => l.split(/\s{2,}/)), [
      ['identity', 'ops-agent (agent, key key-ci)'],
      ['target', 'web-1 (ssh)'],
      ['client', '10.0.3.9:40022 (OpenSSH_9.2p1)'],
    ]);
    assert.deepEqual(statements!.split('\n').map((l) => l.split(/\s{2,}/)), [
      ['SEQ', 'DECISION', 'OUTCOME', 'STATEMENT'],
      ['1', 'allow (read-only-commands)', 'exit 0 (1 line)', '$ uname -a'],
      ['2', 'allow (read-only-commands)', 'exit 1 (6 lines)', '$ cat /etc/app/env /etc/app/extra'],
      ['3', 'deny (no-recursive-deletes)', 'refused', '$ rm -rf /var/lib/app'],
      ['4', 'allow (read-only-commands)', 'signal TERM (0 lines)', '$ sleep 600'],
      ['5', 'allow (file-transfer)', 'exit 0 (0 lines)', 'subsystem sftp'],
    ]);
    assert.deepEqual(details.map((block) => block.split('\n')), [
      [
        '#1  $ uname -a',
        "  trace t-ssh (to see it, set TRACEGATE_API_KEY to a reader's key with a grant: tracegate grants create)",
        '  Linux web-1 6.1.0-13-amd64 x86_64 GNU/Linux',
        '  (1 of 1 output line recorded)',
      ],
      [
        '#2  $ cat /etc/app/env /etc/app/extra',
        '  masked: secret ×1',
        '  DB_HOST=db1',
        '  DB_PASSWORD=<secret:9f2c>',
        '  stderr: cat: /etc/app/extra: No such file or directory',
        '  \\x1b]0;owned\\x07\tdone',
        '  line 5',
        '  (6 of 6 output lines recorded; 1 more not shown here, --json has them)',
      ],
    ]);
    assert.ok(!show.stdout.includes('\u001b'), 'no escape character reaches the terminal');

    const replayed = await tracegate(['sessions', 'replay', ssh.sessionId], cli);
    assert.equal(replayed.code, 0, replayed.stderr);
    assert.deepEqual(replayed.stdout.trimEnd().split('\n').map((l) => l.trim().split(/\s{2,}/)), [
      ['+0.000s', '#1', 'allow (read-only-commands)', 'exit 0 (1 line)', '$ uname -a', '[trace t-ssh]'],
      ["trace t-ssh (to see it, set TRACEGATE_API_KEY to a reader's key with a grant: tracegate grants create)"],
      ['Linux web-1 6.1.0-13-amd64 x86_64 GNU/Linux'],
      ['(1 of 1 output line recorded)'],
      ['+0.020s', '#2', 'allow (read-only-commands)', 'exit 1 (6 lines)', '$ cat /etc/app/env /etc/app/extra'],
      ['masked: secret ×1'],
      ['DB_HOST=db1'],
      ['DB_PASSWORD=<secret:9f2c>'],
      ['stderr: cat: /etc/app/extra: No such file or directory'],
      ['\\x1b]0;owned\\x07\tdone'],
      ['line 5'],
      ['(6 of 6 output lines recorded; 1 more not shown here, --json has them)'],
      ['+0.045s', '#3', 'deny (no-recursive-deletes) — recursive deletes are not allowed on web hosts', 'refused', '$ rm -rf /var/lib/app'],
      ['+0.060s', '#4', 'allow (read-only-commands)', 'signal TERM (0 lines)', '$ sleep 600'],
      ['+0.075s', '#5', 'allow (file-transfer)', 'exit 0 (0 lines)', 'subsystem sftp'],
    ]);

    const json = await tracegate(['sessions', 'replay', ssh.sessionId, '--json'], cli);
    const first = JSON.parse(json.stdout.split('\n')[0]!) as Record<string, unknown>;
    assert.deepEqual([first.protocol, first.maskedText, first.commandTag, first.resultColumns], ['ssh-exec', 'uname -a', 'exit 0', ['stream', 'text']]);

    const verified = await tracegate(['sessions', 'verify', ssh.sessionId], cli);
    assert.equal(verified.code, 0, verified.stdout);
    assert.equal(verified.stdout, `session ${ssh.sessionId} is intact: ${ssh.events.length} events checked (hash chain, sequence, projected rows, signed checkpoints)\n`);
  });
});
