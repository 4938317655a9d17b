import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ConfigError, startServices } from '@tracegate/runtime';
import { freePort, startPostgres } from '@tracegate/test-harness';
import { gatewayService } from './gateway.definition.js';

// The gateway's own start-up checks: a setting that would leave it running but useless stops it
// with a message naming the variable, as every bad configuration value does.

describe('gateway start-up', () => {
  let postgres: Awaited<ReturnType<typeof startPostgres>>;
  let databaseUrl: string;

  before(async () => {
    postgres = await startPostgres();
    databaseUrl = await postgres.createDatabase('tracegate');
  });

  after(async () => {
    await postgres?.stop();
  });

  const environment = async (extra: Record<string, string>) => ({
    TRACEGATE_LOG_LEVEL: 'silent',
    TRACEGATE_INTERNAL_TOKEN: 'gateway-startup-test-token-0123456789abcdef',
    TRACEGATE_GATEWAY_GRPC_PORT: String(await freePort()),
    TRACEGATE_GATEWAY_METRICS_PORT: String(await freePort()),
    TRACEGATE_GATEWAY_POSTGRES_PORT: String(await freePort()),
    ...extra,
  });

  it('refuses to start without a TLS certificate unless plaintext is allowed, naming the variables', async () => {
    await assert.rejects(startServices([gatewayService], { component: 'gateway-startup-test', databaseUrl, env: await environment({}) }), (error: unknown) => {
      assert.ok(error instanceof ConfigError, String(error));
      assert.match(error.message, /TRACEGATE_GATEWAY_TLS_CERT_FILE: is required \(with TRACEGATE_GATEWAY_TLS_KEY_FILE\)/);
      assert.match(error.message, /TRACEGATE_GATEWAY_ALLOW_PLAINTEXT=true/);
      return true;
    });
    const plaintext = await startServices([gatewayService], { component: 'gateway-startup-test', databaseUrl, env: await environment({ TRACEGATE_GATEWAY_ALLOW_PLAINTEXT: 'true' }) });
    await plaintext.stop();
  });
});
