import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runCli } from '../testing/run-cli.js';
import { approvalsService } from '@tracegate/approvals';
import { brokerService } from '@tracegate/broker';
import { approvalsV1, SERVICE_PROTOS } from '@tracegate/contracts';
import { grpcClient, INTERNAL_TOKEN_METADATA, startServices, type PromiseClient, type RunningProcess } from '@tracegate/runtime';
import { freePort, startPostgres, type PostgresServer } from '@tracegate/test-harness';

const TOKEN = randomBytes(32).toString('base64url');

const tracegate = runCli;

describe('tracegate approvals against running approvals and broker services', () => {
  let postgres: PostgresServer;
  let proc: RunningProcess;
  let home: string;
  let cli: Record<string, string>;
  let gateway: PromiseClient<approvalsV1.ApprovalServiceClient>;
  const keys: Record<string, { apiKey: string; id: string }> = {};

  /** Issues a key with `tracegate key create`, as an operator would, and keeps it from the output. */
  const createKey = async (name: string, kind: string, groups: string[]) => {
    const created = await tracegate(['key', 'create', '--name', name, '--kind', kind, ...groups.flatMap((g) => ['--group', g])], cli);
    assert.equal(created.code, 0, created.stderr);
    const apiKey = /^(tg_\S+)$/m.exec(created.stdout)?.[1];
    const id = /, id ([0-9a-f]+):/.exec(created.stdout)?.[1];
    assert.ok(apiKey && id, created.stdout);
    keys[name] = { apiKey, id };
  };
  /** What the gateway does when policy sends a statement to review. */
  const hold = async (maskedCommand: string, quorum = 1) => {
    const { request } = await gateway.request({
      requesterId: keys['ci-agent']!.id,
      requesterName: 'ci-agent',
      target: 'billing',
      maskedCommand,
      traceId: 'trace-1',
      rule: 'agents-writes-need-review',
      reviewerGroup: 'dba',
      quorum,
      timeoutSeconds: 600,
      sessionId: 'session-1',
    });
    return request!.id;
  };

  before(async () => {
    postgres = await startPostgres();
    const brokerPort = String(await freePort());
    const approvalsPort = String(await freePort());
    proc = await startServices([brokerService, approvalsService], {
      component: 'tracegate cli test',
      databaseUrl: await postgres.createDatabase(),
      env: {
        TRACEGATE_BROKER_GRPC_PORT: brokerPort,
        TRACEGATE_BROKER_METRICS_PORT: String(await freePort()),
        TRACEGATE_BROKER_KEYS: `k1:${randomBytes(32).toString('base64')}`,
        TRACEGATE_APPROVALS_GRPC_PORT: approvalsPort,
        TRACEGATE_APPROVALS_METRICS_PORT: String(await freePort()),
        TRACEGATE_INTERNAL_TOKEN: TOKEN,
        TRACEGATE_LOG_LEVEL: 'silent',
      },
    });
    home = await mkdtemp(path.join(tmpdir(), 'tracegate-cli-'));
    cli = { TRACEGATE_BROKER_GRPC_PORT: brokerPort, TRACEGATE_APPROVALS_GRPC_PORT: approvalsPort, TRACEGATE_INTERNAL_TOKEN: TOKEN, TRACEGATE_HOME: home };
    gateway = grpcClient(SERVICE_PROTOS.approvals.files[0], 'tracegate.approvals.v1.ApprovalService', `127.0.0.1:${approvalsPort}`, { metadata: { [INTERNAL_TOKEN_METADATA]: TOKEN } });
    await createKey('ci-agent', 'agent', ['bots']);
    await createKey('alice', 'human', ['dba']);
    await createKey('bob', 'human', ['dba']);
    await createKey('carol', 'human', ['sre']);
  });

  after(async () => {
    gateway?.close();
    await proc?.stop();
    await postgres?.stop();
    if (home) await rm(home, { recursive: true, force: true });
  });

  it('lists pending requests as a table and as JSON, and shows one', async () => {
    const id = await hold('UPDATE invoices SET total = $1 WHERE id = $2');
    const list = await tracegate(['approvals', 'list'], cli);
    assert.equal(list.code, 0, list.stderr);
    const [header, ...rows] = list.stdout.trimEnd().split('\n');
    assert.match(header!, /^ID\s+STATE\s+REQUESTER\s+TARGET\s+GROUP\s+APPROVALS\s+EXPIRES\s+COMMAND$/);
    const row = rows.find((r) => r.startsWith(id));
    assert.match(row ?? '', /^\S+\s+pending\s+ci-agent\s+billing\s+dba\s+0\/1\s+\d{4}-\d\d-\d\dT\S+Z\s+UPDATE invoices SET total = \$1 WHERE id = \$2$/);

    const json = await tracegate(['approvals', 'list', '--json'], cli);
    assert.equal(json.code, 0, json.stderr);
    const parsed = JSON.parse(json.stdout) as { requests: { id: string; state: string; maskedCommand: string }[] };
    const mine = parsed.requests.find((r) => r.id === id);
    assert.equal(mine?.state, 'APPROVAL_STATE_PENDING');
    assert.equal(mine?.maskedCommand, 'UPDATE invoices SET total = $1 WHERE id = $2');

    const show = await tracegate(['approvals', 'show', id], cli);
    assert.equal(show.code, 0, show.stderr);
    assert.match(show.stdout, new RegExp(`^request +${id}\\nstate +pending\\nrequester +ci-agent \\(key ${keys['ci-agent']!.id}\\)\\ntarget +billing\\ncommand +UPDATE invoices`));
    assert.match(show.stdout, /\nreviewers +'dba', 1 approval needed\napproved by +-\n/);

    const bad = await tracegate(['approvals', 'list', '--state', 'maybe'], cli);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--state 'maybe' is not one of pending, approved, denied, expired, withdrawn, all/);
    const missing = await tracegate(['approvals', 'show', '00000000-0000-4000-8000-000000000000'], cli);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /^tracegate: no approval request has id '00000000-0000-4000-8000-000000000000'; run `tracegate approvals list`/);
  });

  it('approves as the reviewer whose API key is in TRACEGATE_API_KEY; a quorum of two needs a second person', async () => {
    const id = await hold('DELETE FROM invoices WHERE id = $1', 2);
    const first = await tracegate(['approvals', 'approve', id], { ...cli, TRACEGATE_API_KEY: keys.alice!.apiKey });
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, new RegExp(`^approved; request ${id} needs 1 more approval from 'dba'\\n`));
    const twice = await tracegate(['approvals', 'approve', id], { ...cli, TRACEGATE_API_KEY: keys.alice!.apiKey });
    assert.equal(twice.code, 1);
    assert.match(twice.stderr, /^tracegate: you already approved request .*; each reviewer counts once/);
    const outsider = await tracegate(['approvals', 'approve', id], { ...cli, TRACEGATE_API_KEY: keys.carol!.apiKey });
    assert.equal(outsider.code, 1);
    assert.match(outsider.stderr, /^tracegate: 'carol' is not in the reviewer group 'dba'/);
    const second = await tracegate(['approvals', 'approve', id], { ...cli, TRACEGATE_API_KEY: keys.bob!.apiKey });
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stdout, new RegExp(`^request ${id} is now approved\\n`));
    assert.match(second.stdout, /\napproved by +alice, bob\n/);

    const approved = await tracegate(['approvals', 'list', '--state', 'approved'], cli);
    assert.ok(approved.stdout.split('\n').some((r) => r.startsWith(id)), approved.stdout);
  });

  it('denies with --reason; without a reason, without an API key, or by the requester it says what to do', async () => {
    const id = await hold('TRUNCATE audit_log');
    const noReason = await tracegate(['approvals', 'deny', id], { ...cli, TRACEGATE_API_KEY: keys.bob!.apiKey });
    assert.equal(noReason.code, 2);
    assert.match(noReason.stderr, /deny needs --reason "<why>": the requester reads it/);
    const noKey = await tracegate(['approvals', 'approve', id], cli);
    assert.equal(noKey.code, 1);
    assert.match(noKey.stderr, /^tracegate: to approve a request, set TRACEGATE_API_KEY to your own API key/);
    const requester = await tracegate(['approvals', 'approve', id], { ...cli, TRACEGATE_API_KEY: keys['ci-agent']!.apiKey });
    assert.equal(requester.code, 1);
    assert.equal(requester.stderr, "tracegate: you requested this change; another member of 'dba' must approve it\n");

    const denied = await tracegate(['approvals', 'deny', id, '--reason', 'truncating the audit log is never allowed'], { ...cli, TRACEGATE_API_KEY: keys.bob!.apiKey });
    assert.equal(denied.code, 0, denied.stderr);
    assert.match(denied.stdout, /is now denied\nrequest .*\nstate +denied \(truncating the audit log is never allowed\)\n/);
    assert.match(denied.stdout, /\ndecided by +bob\n/);
    const { request } = await gateway.get({ id });
    assert.equal(request!.reason, 'truncating the audit log is never allowed');

    const late = await tracegate(['approvals', 'approve', id], { ...cli, TRACEGATE_API_KEY: keys.alice!.apiKey });
    assert.equal(late.code, 1);
    assert.match(late.stderr, /was already denied .*there is nothing left to approve/);
  });

  it('reads with a reviewer key alone when no internal token is at hand', async () => {
    const withoutToken = { TRACEGATE_APPROVALS_GRPC_PORT: cli.TRACEGATE_APPROVALS_GRPC_PORT!, TRACEGATE_HOME: home };
    const refused = await tracegate(['approvals', 'list'], withoutToken);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /no internal token/);
    const list = await tracegate(['approvals', 'list', '--state', 'all'], { ...withoutToken, TRACEGATE_API_KEY: keys.carol!.apiKey });
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /TRUNCATE audit_log/);
  });
});
