import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Counter } from 'prom-client';
import tls from 'node:tls';
import { Inject, Module, type BeforeApplicationShutdown, type DynamicModule, type OnApplicationBootstrap } from '@nestjs/common';
import { ConfigError, SERVICE_CONTEXT, type ConfigOf, type ServiceContext } from '@tracegate/runtime';
import { ApprovalsClient } from './clients/approvals-client.js';
import { BrokerClient } from './clients/broker-client.js';
import { MaskingProfileFeed } from './clients/masking-client.js';
import { PolicyClient } from './clients/policy-client.js';
import { TraceClient } from './clients/trace-client.js';
import type { gatewayConfigSchema } from './gateway.config.js';
import { CachingJudge } from './postgres/decision-cache.js';
import { EventSessionRecorder } from './postgres/event-session-recorder.js';
import { PostgresListener } from './postgres/postgres-listener.js';
import { SshListener } from './ssh/ssh-listener.js';
import { hostKeyFingerprint, hostKeyProblem } from './ssh/host-key.js';

export type GatewayConfig = ConfigOf<typeof gatewayConfigSchema>;
const GATEWAY_CONFIG = Symbol('GATEWAY_CONFIG');

/** Runs the Postgres listener for the life of the service; shuts it down before the event log closes. */
class PostgresListenerLifecycle implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private listener: PostgresListener | undefined;
  private ssh: SshListener | undefined;
  private broker: BrokerClient | undefined;
  private policy: PolicyClient | undefined;
  private judge: CachingJudge | undefined;
  private approvals: ApprovalsClient | undefined;
  private traces: TraceClient | undefined;
  private masking: MaskingProfileFeed | undefined;

  constructor(
    @Inject(SERVICE_CONTEXT) private readonly context: ServiceContext,
    @Inject(GATEWAY_CONFIG) private readonly config: GatewayConfig,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    const { context, config } = this;
    // Settings are checked before anything starts, so a bad one leaves nothing listening behind.
    const secureContext = loadTls(config);
    const sshHostKey = config.sshHostKeyFile ? loadSshHostKey(config.sshHostKeyFile) : undefined;
    // As the host config reads it: an empty value is unset (never all interfaces by accident).
    const host = context.env.TRACEGATE_BIND_HOST?.trim() || '127.0.0.1';
    const local = (port: string | undefined, fallback: number) => `127.0.0.1:${port ?? fallback}`;
    this.broker = new BrokerClient(config.brokerAddress ?? local(context.env.TRACEGATE_BROKER_GRPC_PORT, 7104), config.internalToken);
    this.policy = new PolicyClient(config.policyAddress ?? local(context.env.TRACEGATE_POLICY_GRPC_PORT, 7102), config.internalToken);
    this.approvals = new ApprovalsClient(config.approvalsAddress ?? local(context.env.TRACEGATE_APPROVALS_GRPC_PORT, 7105), config.internalToken, context.logger);
    this.traces = new TraceClient(config.auditAddress ?? local(context.env.TRACEGATE_AUDIT_GRPC_PORT, 7106), config.internalToken);
    let hashKey = config.maskingHashKey ? Buffer.from(config.maskingHashKey, 'base64') : undefined;
    if (!hashKey) {
      hashKey = randomBytes(32);
      context.logger.warn('TRACEGATE_MASKING_HASH_KEY is not set: hashed values are masked with a key of this process only, so they will not match the masking service\'s or survive a restart');
    }
    this.masking = new MaskingProfileFeed(config.maskingAddress ?? local(context.env.TRACEGATE_MASKING_GRPC_PORT, 7103), config.internalToken, hashKey, context.logger);
    this.masking.start();
    this.judge = new CachingJudge(this.policy, this.policy);
    this.judge.start();
    const judge = this.judge;
    new Counter({
      name: 'tracegate_gateway_decisions_total',
      help: 'Statement decisions by where they came from: the gateway cache (hit) or the policy service (miss). Hit rate = hit / (hit + miss).',
      labelNames: ['source'],
      registers: [context.metrics],
      collect() {
        this.reset();
        this.inc({ source: 'hit' }, judge.hits);
        this.inc({ source: 'miss' }, judge.misses);
      },
    });
    const recorder = new EventSessionRecorder(context.eventLog, context.logger, config.durability);
    const maskingFallbackProfile = config.maskingFallbackProfile === 'none' ? '' : config.maskingFallbackProfile;
    this.listener = new PostgresListener(
      {
        host,
        port: config.postgresPort,
        tls: secureContext,
        requireTls: config.allowPlaintext !== 'true',
        upstreamTimeoutMs: config.upstreamTimeoutMs,
        startupTimeoutMs: config.startupTimeoutMs,
        recordedRows: config.recordedRows,
        maskingFallbackProfile,
        maxMessageLength: 1024 * 1024 * 1024,
      },
      {
        authenticator: this.broker,
        broker: this.broker,
        judge: this.judge,
        recorder,
        reviews: this.approvals,
        traces: this.traces,
        masking: this.masking,
      },
      context.logger,
    );
    await this.listener.listen();
    if (!sshHostKey) {
      context.logger.info('SSH listener is off: set TRACEGATE_GATEWAY_SSH_HOST_KEY_FILE to the host key clients should pin to serve SSH');
      return;
    }
    this.ssh = new SshListener(
      { host, port: config.sshPort, hostKeys: [sshHostKey], upstreamTimeoutMs: config.upstreamTimeoutMs, maskingFallbackProfile, recordedLines: config.recordedRows, loginGraceMs: config.startupTimeoutMs },
      { authenticator: this.broker, broker: this.broker, judge: this.judge, recorder, reviews: this.approvals, traces: this.traces, masking: this.masking },
      context.logger,
    );
    await this.ssh.listen();
    context.logger.info({ hostKey: hostKeyFingerprint(sshHostKey) }, 'SSH clients should see this host key fingerprint');
  }

  async beforeApplicationShutdown(): Promise<void> {
    await Promise.all([this.listener?.close(5000), this.ssh?.close(5000)]);
    this.judge?.stop();
    this.broker?.close();
    this.policy?.close();
    this.approvals?.close();
    this.traces?.close();
    this.masking?.stop();
  }
}

function loadSshHostKey(file: string): Buffer {
  let key: Buffer;
  try {
    key = readFileSync(file);
  } catch (error) {
    throw new ConfigError('gateway', [{ env: 'TRACEGATE_GATEWAY_SSH_HOST_KEY_FILE', problem: `cannot be read: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}` }]);
  }
  const problem = hostKeyProblem(key);
  if (problem) throw new ConfigError('gateway', [{ env: 'TRACEGATE_GATEWAY_SSH_HOST_KEY_FILE', problem }]);
  return key;
}

function loadTls(config: GatewayConfig): tls.SecureContext | undefined {
  if (!config.tlsCertFile && !config.tlsKeyFile) {
    if (config.allowPlaintext === 'true') return undefined;
    // Otherwise the gateway would start and refuse every client (passwords are API keys, TLS is required).
    throw new ConfigError('gateway', [
      { env: 'TRACEGATE_GATEWAY_TLS_CERT_FILE', problem: 'is required (with TRACEGATE_GATEWAY_TLS_KEY_FILE): clients send API keys as passwords, so TLS is required; set TRACEGATE_GATEWAY_ALLOW_PLAINTEXT=true only for a trusted network' },
    ]);
  }
  if (!config.tlsCertFile || !config.tlsKeyFile) {
    const missing = config.tlsCertFile ? 'TRACEGATE_GATEWAY_TLS_KEY_FILE' : 'TRACEGATE_GATEWAY_TLS_CERT_FILE';
    throw new ConfigError('gateway', [{ env: missing, problem: 'must be set together with the other TLS file' }]);
  }
  try {
    return tls.createSecureContext({ cert: readFileSync(config.tlsCertFile), key: readFileSync(config.tlsKeyFile) });
  } catch (error) {
    throw new ConfigError('gateway', [{ env: 'TRACEGATE_GATEWAY_TLS_CERT_FILE', problem: `the certificate or key cannot be used: ${(error as Error).message}` }]);
  }
}

/**
 * The gateway terminates client protocols (Postgres wire and SSH), decides every statement or command
 * with the policy service, logs in to targets with the broker's credentials, and records each
 * step on the event log.
 */
@Module({})
export class GatewayModule {
  static forRoot(_context: ServiceContext, config: GatewayConfig): DynamicModule {
    return { module: GatewayModule, providers: [{ provide: GATEWAY_CONFIG, useValue: config }, PostgresListenerLifecycle] };
  }
}
