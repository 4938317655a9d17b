import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Injectable, Module, type BeforeApplicationShutdown, type DynamicModule, type OnModuleInit } from '@nestjs/common';
import { Inject } from '@nestjs/common';
import { credentials, loadPackageDefinition, status as GrpcStatus, type ServiceError } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { HEALTH_PROTO, PROTO_LOADER_OPTIONS, PROTO_ROOT, SERVICE_PROTOS, type healthV1, type policyV1 } from '@tracegate/contracts';
import { GENESIS, PostgresEventLog, sealEvent, TOPICS, type DeliveredEvent, type EventLog } from '@tracegate/events';
import { freePort, pollUntil, startPostgres } from '@tracegate/test-harness';
import { EVENT_LOG, type ServiceDefinition } from './service-host.js';
import { grpcClient } from './grpc-client.js';
import { startServices, type RunningProcess } from './process-host.js';

/** Work that is still running when SIGTERM arrives: the service must finish it and its event must reach the log. */
@Injectable()
class InFlightWork implements OnModuleInit, BeforeApplicationShutdown {
  static finished = false;
  private work: Promise<void> | undefined;
  constructor(@Inject(EVENT_LOG) private readonly eventLog: EventLog) {}
  onModuleInit() {
    this.work = (async () => {
      await new Promise((r) => setTimeout(r, 500));
      await this.eventLog.append([
        {
          topic: TOPICS.sessions.name,
          key: 'session-in-flight',
          event: sealEvent({ type: 'dev.tracegate.session.ended.v1', subject: 'session-in-flight', source: '/tracegate/test', data: { reason: 'finished during shutdown' } }, GENESIS),
        },
      ]);
      InFlightWork.finished = true;
    })();
  }
  async beforeApplicationShutdown() {
    await this.work;
  }
}

@Module({ providers: [InFlightWork] })
class InFlightModule {}

describe('service host', () => {
  let postgres: Awaited<ReturnType<typeof startPostgres>>;
  let databaseUrl: string;
  let environment: Record<string, string>;
  let proc: RunningProcess | undefined;

  const definition: ServiceDefinition = {
    name: 'policy',
    defaultPorts: { grpc: 1, metrics: 1 },
    grpcServices: ['tracegate.policy.v1.PolicyService'],
    configSchema: {},
    module: (): DynamicModule => ({ module: InFlightModule }),
  };

  before(async () => {
    postgres = await startPostgres();
    databaseUrl = await postgres.createDatabase();
    environment = {
      TRACEGATE_POLICY_GRPC_PORT: String(await freePort()),
      TRACEGATE_POLICY_METRICS_PORT: String(await freePort()),
      TRACEGATE_LOG_LEVEL: 'silent',
    };
    proc = await startServices([definition], { component: 'tracegate test', databaseUrl, env: environment });
  });

  after(async () => {
    await proc?.stop();
    await postgres.stop();
  });

  it('answers grpc.health.v1 for the server, for each served service, and NOT_FOUND for others', async () => {
    const health = grpcClient<healthV1.HealthClient>(HEALTH_PROTO.file, 'grpc.health.v1.Health', `127.0.0.1:${environment.TRACEGATE_POLICY_GRPC_PORT}`);
    try {
      assert.deepEqual(await health.check({ service: '' }), { status: 1 });
      assert.deepEqual(await health.check({ service: 'tracegate.policy.v1.PolicyService' }), { status: 1 });
      await assert.rejects(health.check({ service: 'tracegate.nope.v1.Nope' }), (error: ServiceError) => {
        assert.equal(error.code, GrpcStatus.NOT_FOUND);
        assert.match(error.details, /no service named 'tracegate.nope.v1.Nope' is served here/);
        return true;
      });
    } finally {
      health.close();
    }
  });

  it('answers an RPC the service does not implement yet with UNIMPLEMENTED, not a hang', async () => {
    const policy = grpcClient<policyV1.PolicyServiceClient>(SERVICE_PROTOS.policy.files[0], 'tracegate.policy.v1.PolicyService', `127.0.0.1:${environment.TRACEGATE_POLICY_GRPC_PORT}`);
    try {
      await assert.rejects(policy.decide({} as policyV1.DecideRequest), (error: ServiceError) => error.code === GrpcStatus.UNIMPLEMENTED);
    } finally {
      policy.close();
    }
  });

  it('on shutdown finishes in-flight work and flushes its events before the log closes; health watchers hear NOT_SERVING and the stream ends', async () => {
    assert.equal(InFlightWork.finished, false, 'the work is still running when shutdown starts');
    const definition = loadSync(HEALTH_PROTO.file, { ...PROTO_LOADER_OPTIONS, includeDirs: [PROTO_ROOT] });
    const Health = (loadPackageDefinition(definition) as never as { grpc: { health: { v1: { Health: new (a: string, c: unknown) => { watch(r: object): NodeJS.EventEmitter; close(): void } } } } }).grpc.health.v1.Health;
    const watcher = new Health(`127.0.0.1:${environment.TRACEGATE_POLICY_GRPC_PORT}`, credentials.createInsecure());
    const statuses: number[] = [];
    const stream = watcher.watch({ service: '' });
    stream.on('data', (m: { status: number }) => statuses.push(m.status));
    const ended = new Promise<void>((resolve) => {
      stream.on('end', () => resolve());
      stream.on('error', () => resolve());
    });
    await pollUntil(() => statuses.length > 0, { description: 'the first health status' });
    await proc!.stop();
    await ended;
    watcher.close();
    assert.deepEqual(statuses, [1, 2], 'SERVING, then NOT_SERVING before the stream ends');
    assert.equal(InFlightWork.finished, true);

    const reader = await PostgresEventLog.connect(databaseUrl);
    const seen: DeliveredEvent[] = [];
    const subscription = await reader.subscribe({
      group: 'service-host-test',
      topics: [TOPICS.sessions.name],
      handler: async (delivery) => {
        seen.push(delivery);
      },
    });
    try {
      await pollUntil(() => seen.length > 0, { description: 'the event appended during shutdown' });
      assert.equal(seen[0]!.event.subject, 'session-in-flight');
    } finally {
      await subscription.stop();
      await reader.close();
    }
  });
});
