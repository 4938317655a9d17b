import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import net from 'node:net';
import path from 'node:path';
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

  it('serves SSH only with a usable host key, and names the variable when the key is not one', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'gateway-ssh-key-'));
    try {
      const publicOnly = path.join(dir, 'public.pem');
      writeFileSync(publicOnly, generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'pem' }));
      for (const [file, problem] of [
        [path.join(dir, 'missing.pem'), /TRACEGATE_GATEWAY_SSH_HOST_KEY_FILE: cannot be read: ENOENT/],
        [publicOnly, /TRACEGATE_GATEWAY_SSH_HOST_KEY_FILE: (is not a private key|holds a public key)/],
      ] as const) {
        const env = await environment({ TRACEGATE_GATEWAY_ALLOW_PLAINTEXT: 'true', TRACEGATE_GATEWAY_SSH_HOST_KEY_FILE: file, TRACEGATE_GATEWAY_SSH_PORT: String(await freePort()) });
        await assert.rejects(startServices([gatewayService], { component: 'gateway-startup-test', databaseUrl, env }), (error: unknown) => {
          assert.ok(error instanceof ConfigError, String(error));
          assert.match(error.message, problem);
          return true;
        });
      }
      const good = path.join(dir, 'host.pem');
      writeFileSync(good, generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'sec1', format: 'pem' }), { mode: 0o600 });
      const sshPort = await freePort();
      const running = await startServices([gatewayService], {
        component: 'gateway-startup-test',
        databaseUrl,
        env: await environment({ TRACEGATE_GATEWAY_ALLOW_PLAINTEXT: 'true', TRACEGATE_GATEWAY_SSH_HOST_KEY_FILE: good, TRACEGATE_GATEWAY_SSH_PORT: String(sshPort) }),
      });
      try {
        const banner = await new Promise<string>((resolve, reject) => {
          const socket = net.connect(sshPort, '127.0.0.1');
          socket.once('data', (data) => {
            socket.destroy();
            resolve(data.toString('latin1'));
          });
          socket.once('error', reject);
        });
        assert.match(banner, /^SSH-2\.0-tracegate/, 'the SSH listener answers with its banner');
      } finally {
        await running.stop();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
