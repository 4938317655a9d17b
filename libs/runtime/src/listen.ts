import net from 'node:net';

export class PortInUseError extends Error {
  override readonly name = 'PortInUseError';
}

/**
 * Checks a port before a server binds it, so the operator reads which service wanted which port
 * and which variable moves it, instead of gRPC's "No address added out of total 1 resolved".
 */
export async function assertPortFree(host: string, port: number, what: string, env: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'EADDRINUSE') {
        reject(new PortInUseError(`${what} cannot listen on ${host}:${port}: the port is already in use. Stop whatever holds it, or set ${env} to a free port.`));
      } else if (error.code === 'EACCES') {
        reject(new PortInUseError(`${what} may not listen on ${host}:${port} (permission denied); set ${env} to a port above 1023.`));
      } else {
        reject(error);
      }
    });
    probe.listen({ host, port, exclusive: true }, () => probe.close(() => resolve()));
  });
}
