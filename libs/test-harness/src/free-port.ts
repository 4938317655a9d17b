import { createServer } from 'node:net';

/**
 * A TCP port on 127.0.0.1 that was free a moment ago: the kernel picks it for port 0, we read it
 * and release it. Another process may take it before the caller binds it, so callers that start a
 * server on it should be ready to retry with a new port.
 */
export async function freePort(): Promise<number> {
  // The kernel may hand the same port to consecutive probes, since each is released before the
  // next; a port this process was already given is never given again, so callers asking for
  // several (a service's gRPC and metrics ports) get distinct ones.
  for (;;) {
    const port = await probePort();
    if (!handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
}

const handedOut = new Set<number>();

function probePort(): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen({ port: 0, host: '127.0.0.1', exclusive: true }, () => {
      const address = server.address();
      if (address === null || typeof address === 'string') {
        server.close();
        reject(new Error('the kernel did not report a TCP port for a socket bound to port 0'));
        return;
      }
      const { port } = address;
      server.close((error) => (error ? reject(error) : resolve(port)));
    });
  });
}

/**
 * `count` distinct free ports. Asking {@link freePort} several times can return the same port
 * twice (each probe releases its port before the next asks); here every probe holds its port
 * until all are known.
 */
export async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<import('node:net').Server>((resolve, reject) => {
          const server = createServer();
          server.once('error', reject);
          server.listen({ port: 0, host: '127.0.0.1', exclusive: true }, () => resolve(server));
        }),
    ),
  );
  const ports = servers.map((s) => (s.address() as import('node:net').AddressInfo).port);
  for (const port of ports) handedOut.add(port);
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  return ports;
}
