import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runCli } from '../testing/run-cli.js';
import { approvalsService } from '@tracegate/approvals';
import { auditService } from '@tracegate/audit';
import { GatewaySessionScript } from '@tracegate/audit/domain/session-events.testing';
import { brokerService } from '@tracegate/broker';
import { approvalsV1, SERVICE_PROTOS } from '@tracegate/contracts';
import { grpcClient, INTERNAL_TOKEN_METADATA, startServices, type PromiseClient, type RunningProcess } from '@tracegate/runtime';
import { expectEventually, freePort, startPostgres, type PostgresServer } from '@tracegate/test-harness';

const TOKEN = randomBytes(32).toString('base64url');

const tracegate = runCli;

describe('tracegate audit export against running broker, approvals and audit services', () => {
  let postgres: PostgresServer;
  let proc: RunningProcess;
  let home: string;
  let cli: Record<string, string>;
  let approvals: PromiseClient<approvalsV1.ApprovalServiceClient>;
  const keys: Record<string, string> = {};

  const inWindow = new GatewaySessionScript(randomUUID(), Date.parse('2026-11-21T10:00:00Z'))
    .started({ identityName: 'ci-agent', target: 'crm' })
    .requested('q1', 'SELECT email FROM customers')
    .result('q1', 0, [['<email:7f3a>'], [null]], ['email'])
    .completed('q1', { commandTag: 'SELECT 2', rows: 2, masked: { email: 1 } })
    .ended();
  const before1 = new GatewaySessionScript(randomUUID(), Date.parse('2026-11-19T10:00:00Z')).started({ identityName: 'ci-agent', target: 'crm' }).ended();

  /** The export's pending approval request, once the CLI has opened it. */
  const pendingExport = async (): Promise<approvalsV1.ApprovalRequest> => {
    let found: approvalsV1.ApprovalRequest | undefined;
    await expectEventually(async () => {
      const { requests } = await approvals.list({ state: approvalsV1.ApprovalState.APPROVAL_STATE_PENDING });
      found = requests.find((r) => r.rule === 'audit-export');
      assert.ok(found, 'an audit-export request is pending');
    });
    return found!;
  };

  before(async () => {
    postgres = await startPostgres();
    const ports = { broker: String(await freePort()), approvals: String(await freePort()), audit: String(await freePort()) };
    proc = await startServices([brokerService, approvalsService, auditService], {
      component: 'tracegate cli test',
      databaseUrl: await postgres.createDatabase(),
      env: {
        TRACEGATE_BROKER_GRPC_PORT: ports.broker,
        TRACEGATE_BROKER_METRICS_PORT: String(await freePort()),
        TRACEGATE_BROKER_KEYS: `k1:${randomBytes(32).toString('base64')}`,
        TRACEGATE_APPROVALS_GRPC_PORT: ports.approvals,
        TRACEGATE_APPROVALS_METRICS_PORT: String(await freePort()),
        TRACEGATE_AUDIT_GRPC_PORT: ports.audit,
        TRACEGATE_AUDIT_METRICS_PORT: String(await freePort()),
        TRACEGATE_INTERNAL_TOKEN: TOKEN,
        TRACEGATE_LOG_LEVEL: 'silent',
      },
    });
    home = await mkdtemp(path.join(tmpdir(), 'tracegate-cli-'));
    cli = { TRACEGATE_BROKER_GRPC_PORT: ports.broker, TRACEGATE_APPROVALS_GRPC_PORT: ports.approvals, TRACEGATE_AUDIT_GRPC_PORT: ports.audit, TRACEGATE_INTERNAL_TOKEN: TOKEN, TRACEGATE_HOME: home };
    approvals = grpcClient(SERVICE_PROTOS.approvals.files[0], 'tracegate.approvals.v1.ApprovalService', `127.0.0.1:${ports.approvals}`, { metadata: { [INTERNAL_TOKEN_METADATA]: TOKEN } });
    for (const name of ['dana', 'bob']) {
      const created = await tracegate(['key', 'create', '--name', name, '--kind', 'human', '--group', 'auditors'], cli);
      assert.equal(created.code, 0, created.stderr);
      keys[name] = /^(tg_\S+)$/m.exec(created.stdout)![1]!;
    }
    await proc.eventLog.append([...before1.records(), ...inWindow.records()]);
    await expectEventually(async () => {
      const list = await tracegate(['sessions', 'list', '--json'], cli);
      assert.equal((JSON.parse(list.stdout) as { sessions: unknown[] }).sessions.length, 2);
    });
  });

  after(async () => {
    approvals?.close();
    await proc?.stop();
    await postgres?.stop();
    if (home) await rm(home, { recursive: true, force: true });
  });

  it('prints the approval request and waits; once another auditor approves, writes the window\'s sessions as JSON lines to stdout', async () => {
    const running = tracegate(['audit', 'export', '--since', '2026-11-20', '--until', '2026-11-22T00:00:00Z'], { ...cli, TRACEGATE_API_KEY: keys.dana! });
    const request = await pendingExport();
    const self = await tracegate(['approvals', 'approve', request.id], { ...cli, TRACEGATE_API_KEY: keys.dana! });
    assert.equal(self.code, 1);
    assert.match(self.stderr, /you requested this change; another member of 'auditors' must approve it/);
    const approved = await tracegate(['approvals', 'approve', request.id], { ...cli, TRACEGATE_API_KEY: keys.bob! });
    assert.equal(approved.code, 0, approved.stderr);

    const run = await running;
    assert.equal(run.code, 0, run.stderr);
    const stderr = run.stderr.split('\n');
    assert.match(stderr[0]!, new RegExp(`^export request ${request.id}: waiting for approval by a member of 'auditors' before \\d{4}-\\d\\d-\\d\\dT\\S+Z \\(\`tracegate approvals approve ${request.id}\`\\)$`));
    assert.equal(stderr[1], 'approved by bob; exporting 1 session');
    assert.equal(stderr[2], `exported 1 session (approval ${request.id})`);
    const lines = run.stdout.trimEnd().split('\n').map((l) => JSON.parse(l) as { session: { id: string; target: string }; statements: { maskedText: string; rowsRecorded: number; masked: Record<string, number>; resultRows: { values: { text?: string }[] }[] }[] });
    assert.deepEqual(lines.map((l) => [l.session.id, l.session.target]), [[inWindow.sessionId, 'crm']]);
    const [statement] = lines[0]!.statements;
    assert.deepEqual([statement!.maskedText, statement!.rowsRecorded, statement!.masked, statement!.resultRows], ['SELECT email FROM customers', 2, { email: 1 }, [{ values: [{ text: '<email:7f3a>' }] }, { values: [{}] }]]);
  });

  it('exits 1 with the reviewer\'s reason when the export is denied, and leaves no --output file behind', async () => {
    const output = path.join(home, 'export.jsonl');
    const running = tracegate(['audit', 'export', '--since', '2026-11-01T00:00:00Z', '--output', output], { ...cli, TRACEGATE_API_KEY: keys.dana! });
    const request = await pendingExport();
    const denied = await tracegate(['approvals', 'deny', request.id, '--reason', 'ask legal first'], { ...cli, TRACEGATE_API_KEY: keys.bob! });
    assert.equal(denied.code, 0, denied.stderr);
    const run = await running;
    assert.equal(run.code, 1);
    assert.equal(run.stdout, '');
    assert.match(run.stderr, new RegExp(`tracegate: export request ${request.id} was denied by bob: ask legal first; nothing was exported\\n$`));
    assert.deepEqual((await readdir(home)).filter((f) => f.startsWith('export.jsonl')), []);
  });

  it('writes an approved export to --output only once it is complete', async () => {
    const output = path.join(home, 'all.jsonl');
    const running = tracegate(['audit', 'export', '--since', '2026-11-01', '--format', 'jsonl', '--output', output], { ...cli, TRACEGATE_API_KEY: keys.dana! });
    const request = await pendingExport();
    assert.deepEqual((await readdir(home)).filter((f) => f === 'all.jsonl'), [], 'nothing at --output while waiting');
    assert.equal((await tracegate(['approvals', 'approve', request.id], { ...cli, TRACEGATE_API_KEY: keys.bob! })).code, 0);
    const run = await running;
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout, '');
    const ids = (await readFile(output, 'utf8')).trimEnd().split('\n').map((l) => (JSON.parse(l) as { session: { id: string } }).session.id);
    assert.deepEqual(ids, [before1.sessionId, inWindow.sessionId], 'in start order');
    assert.match(run.stderr, new RegExp(`exported 2 sessions to ${output.replaceAll('.', '\\.')} \\(approval ${request.id}\\)\\n$`));
  });

  it('says what is wrong with the arguments, and that an export needs an API key', async () => {
    const noSince = await tracegate(['audit', 'export'], { ...cli, TRACEGATE_API_KEY: keys.dana! });
    assert.equal(noSince.code, 2);
    assert.match(noSince.stderr, /--since is required/);
    const badTime = await tracegate(['audit', 'export', '--since', 'yesterday'], { ...cli, TRACEGATE_API_KEY: keys.dana! });
    assert.equal(badTime.code, 2);
    assert.match(badTime.stderr, /--since 'yesterday' is not an ISO 8601 time/);
    const csv = await tracegate(['audit', 'export', '--since', '2026-11-01', '--format', 'csv'], { ...cli, TRACEGATE_API_KEY: keys.dana! });
    assert.equal(csv.code, 2);
    assert.match(csv.stderr, /--format 'csv' is not supported; the export is JSON lines/);
    const noKey = await tracegate(['audit', 'export', '--since', '2026-11-01'], cli);
    assert.equal(noKey.code, 1);
    assert.match(noKey.stderr, /set TRACEGATE_API_KEY/);
  });
});
