import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { brokerV1, SERVICE_PROTOS } from '@tracegate/contracts';
import { grpcClient, INTERNAL_TOKEN_METADATA, type PromiseClient } from '@tracegate/runtime';
import { setTimeout as sleep } from 'node:timers/promises';

// The broker runs as its own process, as in the distributed mode: a service never imports
// another service's code, and reviewers must be real broker identities with real API keys.
const BROKER_MAIN = fileURLToPath(new URL('../../../broker/dist/main.js', import.meta.url));

export interface BrokerProcess {
  readonly address: string;
  /** Issues an API key; returns the key (shown once) and the identity's id. */
  createKey(name: string, kind: 'human' | 'agent', groups: readonly string[]): Promise<{ apiKey: string; id: string }>;
  stop(): Promise<void>;
}

const KINDS = { human: brokerV1.IdentityKind.IDENTITY_KIND_HUMAN, agent: brokerV1.IdentityKind.IDENTITY_KIND_AGENT } as const;

/** `ports`: free loopback ports for its gRPC and metrics servers (the test harness's freePort gives them). */
export async function startBrokerProcess(databaseUrl: string, internalToken: string, ports: { grpc: number; metrics: number }): Promise<BrokerProcess> {
  if (!existsSync(BROKER_MAIN)) throw new Error(`${BROKER_MAIN} is missing: build the broker first (npx tsc -b services/broker)`);
  const port = ports.grpc;
  const child: ChildProcess = spawn(process.execPath, [BROKER_MAIN], {
    env: {
      ...process.env,
      DATABASE_URL: databaseUrl,
      KAFKA_BROKERS: '',
      TRACEGATE_BROKER_GRPC_PORT: String(port),
      TRACEGATE_BROKER_METRICS_PORT: String(ports.metrics),
      TRACEGATE_BROKER_KEYS: `k1:${randomBytes(32).toString('base64')}`,
      TRACEGATE_INTERNAL_TOKEN: internalToken,
      TRACEGATE_LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const address = `127.0.0.1:${port}`;
  const identity: PromiseClient<brokerV1.IdentityServiceClient> = grpcClient(SERVICE_PROTOS.broker.files[0], 'tracegate.broker.v1.IdentityService', address, {
    metadata: { [INTERNAL_TOKEN_METADATA]: internalToken },
    deadlineMs: 2_000,
  });
  try {
    const deadline = Date.now() + 60_000;
    while (!(await identity.listKeys({}).then(() => true, () => false))) {
      if (child.exitCode !== null) throw new Error(`the broker exited with ${child.exitCode}: ${stderr}`);
      if (Date.now() > deadline) throw new Error(`the broker process did not serve within 60 s: ${stderr}`);
      await sleep(100);
    }
  } catch (error) {
    child.kill('SIGKILL');
    identity.close();
    throw error;
  }
  return {
    address,
    async createKey(name, kind, groups) {
      const created = await identity.createKey({ name, kind: KINDS[kind], groups: [...groups] });
      return { apiKey: created.secret, id: created.key!.id };
    },
    async stop() {
      identity.close();
      if (child.exitCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    },
  };
}
