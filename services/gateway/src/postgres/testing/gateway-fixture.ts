import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import pg from 'pg';
import { createLogger, ensureSelfSignedCertificate } from '@tracegate/runtime';
import { PostgresListener } from '../postgres-listener.js';
import type {
  ClientAuthenticator,
  CredentialBroker,
  MaskingProfiles,
  ReviewDesk,
  SessionFacts,
  TraceRegistry,
  SessionRecorder,
  StatementCompletion,
  StatementContext,
  StatementDecision,
  StatementJudge,
  VerifiedIdentity,
} from '../ports.js';
import type { TargetEndpoint } from '../upstream-login.js';

// The gateway's ports served by small in-process implementations, so the integration tier
// exercises the wire protocol against a real PostgreSQL with real clients. The broker and policy
// services have their own tests; the e2e tier runs the same paths through the real services.
//
// This module takes the started PostgreSQL from the caller (the harness is for spec files only),
// so it needs nothing but the gateway's own code.

export const AGENT = { name: 'agent-1', key: 'tg_key_agent_1' } as const;
const IDENTITY: VerifiedIdentity = { id: 'id-agent-1', name: AGENT.name, kind: 'agent', groups: ['bots'] };

/** The part of the harness's PostgresServer the fixture uses. */
export interface TargetServer {
  createDatabase(name?: string): Promise<string>;
}

/** Denies DELETE and DROP, and anything the parser could not read; allows the rest. */
export class RuleJudge implements StatementJudge {
  readonly seen: StatementContext[] = [];
  async decide(statement: StatementContext): Promise<StatementDecision> {
    this.seen.push(statement);
    const deny = /^\s*(delete|drop)\b/i.test(statement.text) || !statement.parsed;
    return deny
      ? { effect: 'deny', rule: 'no-destruction', reason: 'agents may not delete or drop', policyVersion: 'v-test', maskingProfile: '' }
      : { effect: 'allow', rule: 'reads-and-writes', reason: '', policyVersion: 'v-test', maskingProfile: '' };
  }
}

export interface RecordedStatement {
  readonly statementId: string;
  readonly text: string;
  readonly effect: StatementDecision['effect'];
  readonly parameterCount: number;
  readonly traceId: string | undefined;
  readonly parameters: readonly (string | null)[] | undefined;
  completion: StatementCompletion | undefined;
}

/** Keeps what the gateway records in memory, for tests that look at completions. */
export class MemoryRecorder implements SessionRecorder {
  readonly sessions = new Map<string, SessionFacts>();
  readonly ended = new Map<string, string>();
  readonly statements: RecordedStatement[] = [];

  async sessionStarted(facts: SessionFacts): Promise<void> {
    this.sessions.set(facts.sessionId, facts);
  }
  async statementRequested(_sessionId: string, statementId: string, statement: StatementContext, decision: StatementDecision, parameterCount: number): Promise<void> {
    this.statements.push({ statementId, text: statement.text, effect: decision.effect, parameterCount, traceId: statement.traceId, parameters: statement.parameters, completion: undefined });
  }
  statementCompleted(_sessionId: string, statementId: string, completion: StatementCompletion): void {
    const entry = this.statements.find((s) => s.statementId === statementId);
    if (entry) entry.completion = completion;
  }
  readonly results = new Map<string, { columns: string[]; rows: (string | null)[][] }>();
  statementResult(_sessionId: string, statementId: string, _chunk: number, columns: readonly string[], rows: readonly (readonly (string | null)[])[]): void {
    const result = this.results.get(statementId) ?? { columns: [...columns], rows: [] };
    result.rows.push(...rows.map((r) => [...r]));
    this.results.set(statementId, result);
  }
  async sessionEnded(sessionId: string, reason: string): Promise<void> {
    this.ended.set(sessionId, reason);
  }
}

export interface GatewayFixtureOptions {
  /** Clients must negotiate TLS (the production default). */
  readonly requireTls?: boolean;
  readonly judge?: StatementJudge;
  readonly recorder?: SessionRecorder;
  readonly reviews?: ReviewDesk;
  readonly traces?: TraceRegistry;
  readonly masking?: MaskingProfiles;
  readonly recordedRows?: number;
  /** Further targets by name, e.g. a fake server; 'billing' is always the real database. */
  readonly targets?: ReadonlyMap<string, TargetEndpoint>;
  readonly upstreamTimeoutMs?: number;
  readonly startupTimeoutMs?: number;
}

export interface GatewayFixture {
  readonly listener: PostgresListener;
  readonly port: number;
  /** The real target database 'billing', as the broker logs in to it. */
  readonly targetUrl: URL;
  readonly certFile: string;
  /** `postgresql://agent-1:<key>@127.0.0.1:<port>/<target>?sslmode=…` */
  gatewayUrl(options?: { key?: string; sslmode?: string; target?: string }): string;
  /** A node-postgres client connected through the gateway over TLS. */
  client(config?: Omit<pg.ClientConfig, 'connectionString' | 'ssl'>): Promise<pg.Client>;
  /** A node-postgres client connected to the target directly. */
  direct(config?: Omit<pg.ClientConfig, 'connectionString'>): Promise<pg.Client>;
  /** Runs psql through the gateway with `-X -At -v ON_ERROR_STOP=0`; never rejects. */
  psql(args: readonly string[], options?: { key?: string; input?: string }): Promise<ProcessResult>;
  close(): Promise<void>;
}

export interface ProcessResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a program to its end and resolves with its exit code and output, whatever the code. */
export function runProgram(file: string, args: readonly string[], options: { env?: NodeJS.ProcessEnv; input?: string } = {}): Promise<ProcessResult> {
  return new Promise((resolve) => {
    const child = execFile(file, args, { env: { ...process.env, PGCONNECT_TIMEOUT: '10', ...options.env }, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      const code = error ? (typeof (error as { code?: unknown }).code === 'number' ? (error as { code: number }).code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
    if (options.input !== undefined) child.stdin?.end(options.input);
  });
}

/**
 * Starts a gateway Postgres listener on a free loopback port in front of a fresh database
 * 'billing' on `server`, with a self-signed certificate and one API key (agent-1).
 */
export async function startGatewayFixture(server: TargetServer, options: GatewayFixtureOptions = {}): Promise<GatewayFixture> {
  const targetUrl = new URL(await server.createDatabase('billing'));
  const folder = mkdtempSync(path.join(tmpdir(), 'gateway-tls-'));
  const cert = await ensureSelfSignedCertificate(folder);
  const billing: TargetEndpoint = {
    name: 'billing',
    host: targetUrl.hostname,
    port: Number(targetUrl.port),
    database: 'billing',
    user: decodeURIComponent(targetUrl.username),
    password: decodeURIComponent(targetUrl.password),
    tls: 'disable',
  };
  const targets = new Map<string, TargetEndpoint>([['billing', billing], ...(options.targets ?? [])]);
  const authenticator: ClientAuthenticator = {
    async authenticate(user, password) {
      return user === AGENT.name && password === AGENT.key ? IDENTITY : undefined;
    },
  };
  let leases = 0;
  const broker: CredentialBroker = {
    async checkout(name) {
      const endpoint = targets.get(name);
      if (!endpoint) throw new Error(`target "${name}" is not registered with tracegate`);
      leases += 1;
      return { leaseId: `lease-${leases}`, endpoint };
    },
    async release() {},
  };
  const logger = createLogger('gateway-test', 'silent');
  const listener = new PostgresListener(
    {
      host: '127.0.0.1',
      port: 0,
      tls: tls.createSecureContext({ cert: readFileSync(cert.certFile), key: readFileSync(cert.keyFile) }),
      requireTls: options.requireTls ?? true,
      upstreamTimeoutMs: options.upstreamTimeoutMs ?? 10_000,
      startupTimeoutMs: options.startupTimeoutMs,
      recordedRows: options.recordedRows ?? 0,
      maxMessageLength: 64 * 1024 * 1024,
    },
    { authenticator, broker, judge: options.judge ?? new RuleJudge(), recorder: options.recorder ?? new MemoryRecorder(), ...(options.reviews ? { reviews: options.reviews } : {}), ...(options.traces ? { traces: options.traces } : {}), ...(options.masking ? { masking: options.masking } : {}) },
    logger,
  );
  const address = await listener.listen();
  const port = Number(address.slice(address.lastIndexOf(':') + 1));

  const gatewayUrl: GatewayFixture['gatewayUrl'] = ({ key = AGENT.key, sslmode = 'require', target = 'billing' } = {}) =>
    `postgresql://${AGENT.name}:${key}@127.0.0.1:${port}/${target}?sslmode=${sslmode}`;
  return {
    listener,
    port,
    targetUrl,
    certFile: cert.certFile,
    gatewayUrl,
    async client(config = {}) {
      const c = new pg.Client({ ...config, connectionString: `postgresql://${AGENT.name}:${AGENT.key}@127.0.0.1:${port}/billing`, ssl: { rejectUnauthorized: false } });
      await c.connect();
      return c;
    },
    async direct(config = {}) {
      const c = new pg.Client({ ...config, connectionString: targetUrl.toString() });
      await c.connect();
      return c;
    },
    psql(args, { key, input } = {}) {
      return runProgram('psql', ['-X', '-v', 'ON_ERROR_STOP=0', '-At', gatewayUrl({ key }), ...args], { input });
    },
    async close() {
      await listener.close(1000);
      rmSync(folder, { recursive: true, force: true });
    },
  };
}
