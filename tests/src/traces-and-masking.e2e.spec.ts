import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { expectEventually, pollUntil, startPostgres } from '@tracegate/test-harness';
import { isolatedEnvironment, runTracegate, TracegateProcess } from './support/tracegate-process.js';

const run = promisify(execFile);

/**
 * An agent's reasoning and the data it reads, end to end through every service: a trace submitted
 * with the CLI and attached to psql statements in a sqlcommenter comment (never reaching the
 * target), a foreign trace refused, an inline trace stored masked and readable only under a reader
 * grant, rows masked by the masking engine on the way to the agent, and `sessions show` linking
 * each statement to its trace.
 */
describe('reasoning traces and masking end to end', () => {
  let postgres: Awaited<ReturnType<typeof startPostgres>>;
  let home: string;
  let environment: Record<string, string>;
  let tracegate: TracegateProcess | undefined;
  const keys: Record<string, string> = {};

  const psql = (name: string, sql: string) =>
    run('psql', ['-X', '-At', '-v', 'ON_ERROR_STOP=1', `postgresql://${name}:${keys[name]}@127.0.0.1:${environment.TRACEGATE_GATEWAY_POSTGRES_PORT}/billing?sslmode=require`, '-c', sql]).then(
      (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
      (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
    );
  const as = (name: string) => ({ ...environment, TRACEGATE_IDENTITY: name, TRACEGATE_API_KEY: keys[name]! });
  const submitTrace = async (name: string, trace: object) => {
    const file = path.join(home, `trace-${Date.now()}-${Math.random()}.json`);
    writeFileSync(file, JSON.stringify(trace));
    const submitted = await runTracegate(['traces', 'submit', '--file', file, '--json'], as(name));
    assert.equal(submitted.code, 0, submitted.stderr);
    return (JSON.parse(submitted.stdout) as { id: string }).id;
  };

  before(async () => {
    postgres = await startPostgres();
    const targetUrl = new URL(await postgres.createDatabase('billing'));
    const setup = new pg.Client({ connectionString: targetUrl.toString() });
    await setup.connect();
    await setup.query('CREATE TABLE customers (id int PRIMARY KEY, email text, notes text)');
    await setup.query("INSERT INTO customers SELECT g, 'user' || g || '@example.com', 'card 4111 1111 1111 1111 on file' FROM generate_series(1, 50) AS g");
    await setup.end();

    home = mkdtempSync(path.join(tmpdir(), 'tracegate-e2e-traces-'));
    // A profile of the masking service's own, named by a policy rule: it reaches the gateway by WatchProfiles.
    const profiles = path.join(home, 'profiles');
    mkdirSync(profiles);
    writeFileSync(path.join(profiles, 'support.yaml'), 'name: support\nversion: "1"\nrules:\n  - { name: notes-hidden, column: notes, strategy: redact }\n  - { name: emails, column: email, strategy: partial, keep_last: 11 }\n');
    const policy = path.join(home, 'policy.yaml');
    writeFileSync(
      policy,
      [
        'version: 1',
        'default: { agent: deny, human: allow, service: deny }',
        'rules:',
        '  - name: agents-read-customers-for-support',
        '    priority: 600',
        '    match: { identity: { kind: [agent] }, statement: { kind: [select], reads: [customers] } }',
        '    effect: allow',
        '    masking_profile: support',
        '  - name: agents-read',
        '    priority: 500',
        '    match: { identity: { kind: [agent] }, statement: { kind: [select] } }',
        '    effect: allow',
        '',
      ].join('\n'),
    );
    environment = {
      ...(await isolatedEnvironment(home)),
      DATABASE_URL: await postgres.createDatabase('tracegate'),
      TRACEGATE_MASKING_PROFILES_DIR: profiles,
      TRACEGATE_POLICY_FILE: policy,
    };
    tracegate = await TracegateProcess.startHealthy(environment);
    const added = await runTracegate(
      ['target', 'add', 'billing', '--type', 'postgres', '--host', targetUrl.hostname, '--port', targetUrl.port, '--database', 'billing', '--user', decodeURIComponent(targetUrl.username), '--password-env', 'BILLING_PASSWORD', '--tls', 'disable'],
      { ...environment, BILLING_PASSWORD: decodeURIComponent(targetUrl.password) },
    );
    assert.equal(added.code, 0, added.stderr);
    for (const [name, kind] of [['billing-bot', 'agent'], ['other-bot', 'agent'], ['auditor', 'human']] as const) {
      const created = await runTracegate(['key', 'create', '--name', name, '--kind', kind], environment);
      assert.equal(created.code, 0, created.stderr);
      keys[name] = /(tg_[A-Za-z0-9_-]+)/.exec(created.stdout)![1]!;
    }
  });

  after(async () => {
    await tracegate?.terminate('SIGTERM');
    await postgres?.stop();
    if (home) rmSync(home, { recursive: true, force: true });
  });

  it('attaches a submitted trace to statements, keeps it from the target, masks the rows, and shows the link in the session', async () => {
    const traceId = await submitTrace('billing-bot', { agent: { name: 'billing-bot', model: 'none' }, prompt: 'find who to call about invoice 7', confidence: 0.92, tags: ['billing'] });
    const read = await psql('billing-bot', `SELECT email, notes FROM customers WHERE id = 7 /*tracegate_trace_id='${traceId}'*/`);
    assert.equal(read.code, 0, read.stderr);
    // The service's `support` profile, named by the policy: emails keep a tail (the default
    // profile would hash them whole), notes are gone.
    const [email, notes] = read.stdout.trim().split('|');
    assert.match(email ?? '', /^\*+[a-z.]+\.com$/);
    assert.doesNotMatch(email ?? '', /user7/);
    assert.doesNotMatch(notes ?? '', /4111/);
    const seen = await psql('billing-bot', `SELECT query FROM pg_stat_activity WHERE pid = pg_backend_pid() /*tracegate_trace_id='${traceId}'*/`);
    assert.equal(seen.code, 0, seen.stderr);
    assert.match(seen.stdout, /SELECT query FROM pg_stat_activity/);
    assert.doesNotMatch(seen.stdout, /tracegate|traceId/, 'the target never sees the trace comment');

    const sessions = await runTracegate(['sessions', 'list', '--identity', 'billing-bot', '--json'], environment);
    assert.equal(sessions.code, 0, sessions.stderr);
    const ids = (JSON.parse(sessions.stdout) as { sessions: { id: string }[] }).sessions.map((s) => s.id);
    await expectEventually(async () => {
      const shown = await Promise.all(ids.map((id) => runTracegate(['sessions', 'show', id, '--json'], environment)));
      const statements = shown.flatMap((s) => (JSON.parse(s.stdout) as { statements: { maskedText: string; traceId: string }[] }).statements);
      const linked = statements.filter((s) => s.traceId === traceId);
      assert.equal(linked.length, 2, JSON.stringify(statements));
      assert.ok(linked.every((s) => !s.maskedText.includes('tracegate_trace_id')));
    });
  });

  it("refuses another agent's trace id", async () => {
    const theirs = await submitTrace('other-bot', { agent: { name: 'other-bot' }, prompt: 'mine', confidence: 0.5 });
    const refused = await psql('billing-bot', `SELECT 1 /*tracegate_trace_id='${theirs}'*/`);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /ERROR: +.*another identity/);
  });

  it('stores an inline trace masked, and lets a reader see it only under a reader grant', async () => {
    const secretPrompt = 'use AKIAIOSFODNN7EXAMPLE and postgres://svc:hunter2@db.internal/app to fix invoice 9';
    const inline = encodeURIComponent(JSON.stringify({ agent: { name: 'billing-bot' }, prompt: secretPrompt, confidence: 0.7 })).replaceAll("'", '%27');
    const read = await psql('billing-bot', `SELECT id FROM customers WHERE id = 9 /*tracegate_trace='${inline}'*/`);
    assert.equal(read.code, 0, read.stderr);

    const sessions = await runTracegate(['sessions', 'list', '--identity', 'billing-bot', '--json'], environment);
    const ids = (JSON.parse(sessions.stdout) as { sessions: { id: string }[] }).sessions.map((s) => s.id);
    const traceId = await pollUntil(async () => {
      const shown = await Promise.all(ids.map((id) => runTracegate(['sessions', 'show', id, '--json'], environment)));
      const statements = shown.flatMap((s) => (JSON.parse(s.stdout) as { statements: { maskedText: string; traceId: string }[] }).statements);
      return statements.find((s) => s.maskedText.includes('WHERE id = 9'))?.traceId || undefined;
    }, { timeoutMs: 30_000, description: 'the inline trace linked in sessions show' });

    const withoutGrant = await runTracegate(['traces', 'show', traceId, '--json'], as('auditor'));
    assert.notEqual(withoutGrant.code, 0);
    assert.match(withoutGrant.stderr, /grant/);

    const granted = await runTracegate(['grants', 'create', '--reader', 'auditor', '--agent', 'billing-bot', '--expires-in', '1h'], environment);
    assert.equal(granted.code, 0, granted.stderr);
    const shown = await runTracegate(['traces', 'show', traceId, '--json'], as('auditor'));
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(shown.stdout, /fix invoice 9/);
    assert.doesNotMatch(shown.stdout, /AKIAIOSFODNN7EXAMPLE/);
    assert.doesNotMatch(shown.stdout, /hunter2/);

    // The same reader replays the agent's session: each statement with its trace beside it.
    const session = await pollUntil(async () => {
      for (const id of ids) {
        const one = await runTracegate(['sessions', 'show', id, '--json'], environment);
        if ((JSON.parse(one.stdout) as { statements: { traceId?: string }[] }).statements.some((st) => st.traceId === traceId)) return id;
      }
      return undefined;
    }, { description: 'the session holding the traced statement' });
    const replayed = await runTracegate(['sessions', 'replay', session], as('auditor'));
    assert.equal(replayed.code, 0, replayed.stderr);
    assert.match(replayed.stdout, new RegExp(`trace ${traceId}: billing-bot \\(confidence 0\\.70\\) use .*fix invoice 9`));
    assert.doesNotMatch(replayed.stdout, /AKIAIOSFODNN7EXAMPLE|hunter2/);
  });
});
