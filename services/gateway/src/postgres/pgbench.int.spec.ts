import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startPostgres } from '@tracegate/test-harness';
import { runProgram, startGatewayFixture, type GatewayFixture } from './testing/gateway-fixture.js';

// pgbench through the gateway, functional only: every query mode completes its transactions with
// none failed. Throughput is the benchmark's business (npm run bench:pg), never a test's.

describe('pgbench through the gateway', () => {
  let target: Awaited<ReturnType<typeof startPostgres>>;
  let gateway: GatewayFixture;

  before(async () => {
    target = await startPostgres();
    gateway = await startGatewayFixture(target);
    const init = await runProgram('pgbench', ['-i', '-s', '1', '-q', gateway.targetUrl.toString()]);
    assert.equal(init.code, 0, `pgbench -i on the target directly: ${init.stderr}`);
  });

  after(async () => {
    await gateway?.close();
    await target?.stop();
  });

  for (const mode of ['simple', 'extended', 'prepared'] as const) {
    it(`runs pgbench -S -M ${mode} with 2 clients to the end, no transaction failed`, async () => {
      const result = await runProgram('pgbench', ['-S', '-t', '50', '-c', '2', '-M', mode, gateway.gatewayUrl()]);
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stdout, new RegExp(`query mode: ${mode}`));
      assert.match(result.stdout, /number of transactions actually processed: 100\/100/);
      assert.match(result.stdout, /number of failed transactions: 0 \(0\.000%\)/);
    });
  }
});
