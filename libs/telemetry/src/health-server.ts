import { createServer, type Server } from 'node:http';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';

/** Each dependency's readiness: true when usable. */
export type ReadinessCheck = () => Promise<Record<string, boolean>>;

export interface HealthServer {
  readonly port: number;
  close(): Promise<void>;
}

/**
 * Serves /healthz (the process runs), /readyz (its dependencies answer) and /metrics
 * (Prometheus) for services that have no HTTP server of their own.
 */
export async function startHealthServer(options: {
  port: number;
  host?: string;
  registry: Registry;
  readiness: ReadinessCheck;
  logger: Logger;
}): Promise<HealthServer> {
  const { registry, readiness, logger } = options;
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const reply = (status: number, type: string, body: string) => {
      res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
      res.end(body);
    };
    if (path === '/healthz') return reply(200, 'application/json', '{"status":"ok"}');
    if (path === '/readyz') {
      readiness()
        .then((checks) => {
          const ready = Object.values(checks).every(Boolean);
          reply(ready ? 200 : 503, 'application/json', JSON.stringify({ ready, checks }));
        })
        .catch((err: unknown) => {
          logger.warn({ err }, 'readiness check failed');
          reply(503, 'application/json', JSON.stringify({ ready: false }));
        });
      return undefined;
    }
    if (path === '/metrics') {
      registry
        .metrics()
        .then((text) => reply(200, registry.contentType, text))
        .catch((err: unknown) => reply(500, 'text/plain', String(err)));
      return undefined;
    }
    return reply(404, 'application/json', '{"error":"not found"}');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host ?? '0.0.0.0', () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : options.port;
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
