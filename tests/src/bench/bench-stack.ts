import { spawn } from 'node:child_process';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { brokerV1, SERVICE_PROTOS } from '@tracegate/contracts';
import { grpcClient, startServices } from '@tracegate/runtime';
import { approvalsService } from '@tracegate/approvals';
import { auditService } from '@tracegate/audit';
import { brokerService } from '@tracegate/broker';
import { gatewayService } from '@tracegate/gateway';
import { maskingService } from '@tracegate/masking';
import { policyService } from '@tracegate/policy';
import { freePort } from '@tracegate/test-harness';

// What the benchmarks share: tracegate's services in the bench process, and gateways each in a
// process of its own (as deployed, and as PgBouncer and the bare pipe run), so no measured path
// shares an event loop with the audit projection or the policy service.

const GATEWAY_MAIN = fileURLToPath(new URL('../../../services/gateway/dist/main.js', import.meta.url));
const SERVICES = [brokerService, policyService, maskingService, approvalsService, auditService];

export interface TargetConnection {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly password: string;
  readonly database: string;
}

export interface BenchStack {
  /** An API key of a human identity, who may do anything under the built-in policy. */
  readonly user: string;
  readonly password: string;
  /** Starts a gateway process with these settings on a free port; returns the port. */
  gateway(settings: Record<string, string>): Promise<number>;
  stop(): Promise<void>;
}

/** The services on `databaseUrl`, with `target` registered as 'bench'. */
export async function startBenchStack(databaseUrl: string, target: TargetConnection): Promise<BenchStack> {
  const internalToken = 'bench-internal-token-0123456789abcdef';
  const env: Record<string, string> = {
    TRACEGATE_LOG_LEVEL: 'warn',
    TRACEGATE_INTERNAL_TOKEN: internalToken,
    TRACEGATE_BROKER_KEYS: `bench:${Buffer.alloc(32, 7).toString('base64')}`,
    TRACEGATE_MASKING_HASH_KEY: Buffer.alloc(32, 9).toString('base64'),
  };
  for (const def of [...SERVICES, gatewayService]) {
    env[`TRACEGATE_${def.name.toUpperCase()}_GRPC_PORT`] = String(await freePort());
    env[`TRACEGATE_${def.name.toUpperCase()}_METRICS_PORT`] = String(await freePort());
  }
  const services = await startServices(SERVICES, { component: 'tracegate-bench', databaseUrl, env });
  const metadata = { 'x-tracegate-internal-token': internalToken };
  const brokerAddress = `127.0.0.1:${env.TRACEGATE_BROKER_GRPC_PORT}`;
  const targets = grpcClient<brokerV1.TargetServiceClient>(SERVICE_PROTOS.broker.files[0], 'tracegate.broker.v1.TargetService', brokerAddress, { metadata });
  const identities = grpcClient<brokerV1.IdentityServiceClient>(SERVICE_PROTOS.broker.files[0], 'tracegate.broker.v1.IdentityService', brokerAddress, { metadata });
  await targets.addTarget({
    target: { name: 'bench', type: brokerV1.TargetType.TARGET_TYPE_POSTGRES, host: target.host, port: target.port, database: target.database, user: target.user, tls: brokerV1.TlsMode.TLS_MODE_DISABLE, labels: {} },
    secret: target.password,
  } as brokerV1.AddTargetRequest);
  const key = await identities.createKey({ name: 'bench-human', kind: brokerV1.IdentityKind.IDENTITY_KIND_HUMAN, groups: [] });
  targets.close();
  identities.close();

  const gateways: { stop(): Promise<void> }[] = [];
  return {
    user: 'bench-human',
    password: key.secret,
    async gateway(settings) {
      const port = await freePort();
      const environment = {
        ...env,
        DATABASE_URL: databaseUrl,
        TRACEGATE_GATEWAY_ALLOW_PLAINTEXT: 'true',
        TRACEGATE_GATEWAY_POSTGRES_PORT: String(port),
        TRACEGATE_GATEWAY_GRPC_PORT: String(await freePort()),
        TRACEGATE_GATEWAY_METRICS_PORT: String(await freePort()),
        TRACEGATE_BROKER_ADDRESS: `127.0.0.1:${env.TRACEGATE_BROKER_GRPC_PORT}`,
        TRACEGATE_POLICY_ADDRESS: `127.0.0.1:${env.TRACEGATE_POLICY_GRPC_PORT}`,
        TRACEGATE_MASKING_ADDRESS: `127.0.0.1:${env.TRACEGATE_MASKING_GRPC_PORT}`,
        TRACEGATE_APPROVALS_ADDRESS: `127.0.0.1:${env.TRACEGATE_APPROVALS_GRPC_PORT}`,
        TRACEGATE_AUDIT_ADDRESS: `127.0.0.1:${env.TRACEGATE_AUDIT_GRPC_PORT}`,
        ...settings,
      };
      gateways.push(await gatewayProcess(environment, port));
      return port;
    },
    async stop() {
      for (const g of gateways.splice(0)) await g.stop();
      await services.stop();
    },
  };
}

/** A gateway on its own (`services/gateway/dist/main.js`), ready once its Postgres port accepts connections. */
async function gatewayProcess(environment: Record<string, string>, port: number): Promise<{ stop(): Promise<void> }> {
  const child = spawn(process.execPath, [GATEWAY_MAIN], { env: { PATH: process.env.PATH ?? '', ...environment }, stdio: ['ignore', 'ignore', 'inherit'] });
  for (let i = 0; ; i += 1) {
    if (child.exitCode !== null) throw new Error(`the gateway process exited with ${child.exitCode}`);
    if (await accepts(port)) break;
    if (i > 600) throw new Error('the gateway process did not start listening within 60 s');
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    async stop() {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    },
  };
}

export function accepts(port: number): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port }, () => (s.destroy(), resolve(true)));
    s.on('error', () => resolve(false));
  });
}
