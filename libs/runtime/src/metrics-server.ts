import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Registry, collectDefaultMetrics } from 'prom-client';
import { assertPortFree } from './listen.js';

/**
 * Serves Prometheus metrics at /metrics and a liveness answer at /healthz on the metrics port.
 * Readiness is the gRPC health service; /healthz only says the process is not wedged.
 */
export class MetricsServer {
  readonly registry = new Registry();
  private server: http.Server | undefined;

  constructor(
    private readonly service: string,
    withProcessMetrics: boolean,
  ) {
    this.registry.setDefaultLabels({ service });
    // Process metrics are per process: in the all-in-one only one service collects them.
    if (withProcessMetrics) collectDefaultMetrics({ register: this.registry, prefix: 'tracegate_' });
  }

  async listen(host: string, port: number, env: string): Promise<string> {
    await assertPortFree(host, port, `${this.service} (metrics)`, env);
    this.server = http.createServer((req, res) => {
      if (req.url === '/metrics') {
        this.registry
          .metrics()
          .then((body) => {
            res.writeHead(200, { 'content-type': this.registry.contentType });
            res.end(body);
          })
          .catch((error: unknown) => {
            res.writeHead(500, { 'content-type': 'text/plain' });
            res.end(`metrics could not be collected: ${error instanceof Error ? error.message : String(error)}\n`);
          });
      } else if (req.url === '/healthz') {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end('ok\n');
      } else {
        res.writeHead(404, { 'content-type': 'text/plain' });
        res.end('not found: try /metrics or /healthz\n');
      }
    });
    const server = this.server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    });
    const address = server.address() as AddressInfo;
    return `${address.address}:${address.port}`;
  }

  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
