import assert from 'node:assert/strict';
import { createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { startPostgres } from '@tracegate/test-harness';
import type { TargetEndpoint } from './upstream-login.js';
import { runProgram, startGatewayFixture, type GatewayFixture } from './testing/gateway-fixture.js';

// A target is not trusted: the gateway logs in to whatever the broker's lease names, and a
// compromised or impostor server must not be able to burn its CPU, make it allocate gigabytes,
// or pass for the real database. Each fake target below speaks just enough of the backend
// protocol to get to its trick.

type Trick = 'absurd-iterations' | 'bad-server-signature' | 'huge-length-at-login' | 'huge-length-after-login' | 'notice-right-after-login';

const FAKE_PASSWORD = 'fake-target-password';

function backendMessage(type: string, body: Buffer): Buffer {
  const header = Buffer.alloc(5);
  header.write(type, 0, 'latin1');
  header.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([header, body]);
}

function authentication(code: number, data: Buffer = Buffer.alloc(0)): Buffer {
  const body = Buffer.alloc(4);
  body.writeInt32BE(code);
  return backendMessage('R', Buffer.concat([body, data]));
}

/** A message that claims 2 GiB - 1 bytes and then sends a few. */
function hugeClaim(type: string): Buffer {
  const header = Buffer.alloc(5);
  header.write(type, 0, 'latin1');
  header.writeInt32BE(0x7fffffff, 1);
  return Buffer.concat([header, Buffer.alloc(64)]);
}

/** Reads the client's start-up packet, then its typed messages, and plays one trick. */
function startFakeTarget(trick: Trick): Promise<{ port: number; server: net.Server; connections: () => number }> {
  let connections = 0;
  const server = net.createServer((socket) => {
    connections += 1;
    socket.on('error', () => undefined);
    let buffer = Buffer.alloc(0);
    let started = false;
    let clientFirstBare = '';
    let serverFirst = '';
    const salt = randomBytes(16);
    const onMessage = (type: string, body: Buffer) => {
      if (type !== 'p') {
        if (type === 'Q' && trick === 'huge-length-after-login') socket.write(Buffer.concat([backendMessage('T', Buffer.from([0, 0])), hugeClaim('D')]));
        if (type === 'Q' && trick === 'notice-right-after-login') socket.write(Buffer.concat([backendMessage('I', Buffer.alloc(0)), backendMessage('Z', Buffer.from('I'))]));
        return;
      }
      if (!serverFirst) {
        // SASLInitialResponse: mechanism, Int32 length, client-first-message "n,,n=*,r=<nonce>".
        const mechanismEnd = body.indexOf(0);
        const clientFirst = body.toString('utf8', mechanismEnd + 5);
        clientFirstBare = clientFirst.slice(3);
        const nonce = /r=([^,]+)/.exec(clientFirstBare)![1]!;
        const iterations = trick === 'absurd-iterations' ? 100_000_000 : 4096;
        serverFirst = `r=${nonce}${randomBytes(12).toString('base64')},s=${salt.toString('base64')},i=${iterations}`;
        socket.write(authentication(11, Buffer.from(serverFirst)));
        return;
      }
      // SASLResponse with the client-final-message: answer with a signature made from the wrong password.
      const clientFinal = body.toString('utf8');
      const withoutProof = clientFinal.slice(0, clientFinal.indexOf(',p='));
      const salted = pbkdf2Sync('not-the-password', salt, 4096, 32, 'sha256');
      const serverKey = createHmac('sha256', salted).update('Server Key').digest();
      const signature = createHmac('sha256', serverKey).update(`${clientFirstBare},${serverFirst},${withoutProof}`).digest();
      socket.write(authentication(12, Buffer.from(`v=${signature.toString('base64')}`)));
      socket.write(Buffer.concat([authentication(0), backendMessage('Z', Buffer.from('I'))]));

    };
    socket.on('data', (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      if (!started) {
        if (buffer.length < 4 || buffer.length < buffer.readInt32BE(0)) return;
        buffer = buffer.subarray(buffer.readInt32BE(0));
        started = true;
        switch (trick) {
          case 'absurd-iterations':
          case 'bad-server-signature':
            socket.write(authentication(10, Buffer.from('SCRAM-SHA-256\0\0')));
            break;
          case 'huge-length-at-login':
            socket.write(hugeClaim('R'));
            break;
          case 'huge-length-after-login':
          case 'notice-right-after-login': {
            const key = Buffer.alloc(8);
            key.writeInt32BE(4242, 0);
            key.writeInt32BE(1, 4);
            // Not hostile, just legal: a server may say more right after ReadyForQuery, in the same packet.
            const more = trick === 'notice-right-after-login' ? [backendMessage('N', Buffer.from('SNOTICE\0VNOTICE\0C00000\0Mhello from right after login\0\0'))] : [];
            socket.write(Buffer.concat([authentication(0), backendMessage('K', key), backendMessage('Z', Buffer.from('I')), ...more]));
            break;
          }
        }
      }
      while (buffer.length >= 5 && buffer.length >= 1 + buffer.readInt32BE(1)) {
        const length = buffer.readInt32BE(1);
        onMessage(String.fromCharCode(buffer[0]!), buffer.subarray(5, 1 + length));
        buffer = buffer.subarray(1 + length);
      }
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ port: (server.address() as net.AddressInfo).port, server, connections: () => connections })));
}

const TRICKS: readonly Trick[] = ['absurd-iterations', 'bad-server-signature', 'huge-length-at-login', 'huge-length-after-login', 'notice-right-after-login'];

describe('a hostile target', () => {
  let target: Awaited<ReturnType<typeof startPostgres>>;
  let gateway: GatewayFixture;
  const fakes = new Map<Trick, Awaited<ReturnType<typeof startFakeTarget>>>();

  before(async () => {
    target = await startPostgres();
    for (const trick of TRICKS) fakes.set(trick, await startFakeTarget(trick));
    const targets = new Map<string, TargetEndpoint>(
      [...fakes].map(([trick, fake]) => [trick, { name: trick, host: '127.0.0.1', port: fake.port, database: 'app', user: 'gateway', password: FAKE_PASSWORD, tls: 'disable' }]),
    );
    gateway = await startGatewayFixture(target, { targets });
  });

  after(async () => {
    await gateway?.close();
    for (const fake of fakes.values()) await new Promise((r) => fake.server.close(r));
    await target?.stop();
  });

  const psqlTo = (name: string, sql: string) => runProgram('psql', ['-X', '-At', gateway.gatewayUrl({ target: name }), '-c', sql]);

  const stillServes = async () => {
    const ok = await gateway.psql(['-c', 'SELECT 7 * 6']);
    assert.equal(ok.stdout, '42\n', `the gateway still serves the real target: ${ok.stderr}`);
  };

  it('refuses to run 100,000,000 SCRAM iterations for a target, with a FATAL that says why, and stays up', async () => {
    const result = await psqlTo('absurd-iterations', 'SELECT 1');
    assert.notEqual(result.code, 0);
    assert.equal(fakes.get('absurd-iterations')!.connections(), 1, 'the gateway did reach the fake target');
    assert.match(result.stderr, /FATAL: {2}the gateway could not log in to target 'absurd-iterations': the target asked for 100000000 SCRAM iterations; the gateway accepts 1024 to 100000/);
    await stillServes();
  });

  it('refuses a target whose SCRAM server signature is wrong: it does not know the password', async () => {
    const result = await psqlTo('bad-server-signature', 'SELECT 1');
    assert.notEqual(result.code, 0);
    assert.match(result.stderr, /FATAL: {2}the gateway could not log in to target 'bad-server-signature': the target failed to prove it knows the password \(SCRAM server signature mismatch\)/);
    await stillServes();
  });

  it('refuses a 2 GiB length claim during login without buffering it', async () => {
    const result = await psqlTo('huge-length-at-login', 'SELECT 1');
    assert.notEqual(result.code, 0);
    assert.match(result.stderr, /FATAL: {2}the gateway could not log in to target 'huge-length-at-login': the target sent a message 'R' claiming 2147483647 bytes/);
    await stillServes();
  });

  it('ends a session whose target sends a 2 GiB length claim, with an error, and stays up', async () => {
    const result = await psqlTo('huge-length-after-login', 'SELECT 1');
    assert.notEqual(result.code, 0);
    assert.match(result.stderr, /FATAL: {2}the target sent a message 'D' claiming 2147483647 bytes \(the limit is 67108864\); the connection to it was closed/);
    assert.doesNotMatch(result.stdout, /./, 'nothing of the bad reply reached the client as data');
    await stillServes();
    assert.equal(gateway.listener.sessionCount, 0, 'no session was left behind');
  });

  it('relays what a target sends right after ReadyForQuery in the same packet as the login (nothing is lost at the hand-over)', async () => {
    const result = await psqlTo('notice-right-after-login', 'SELECT 1');
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stderr, /NOTICE: {2}hello from right after login/);
  });
});
