import { createServer, type Server } from 'node:http';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';

/** Each dependency's readiness: true when usable. */
export type ReadinessCheck = () => Promise<Record<string, boolean>>;

/** Each part whose failure only a restart mends: true while it works. */
export type LivenessCheck = () => Promise<Record<string, boolean>>;

export interface HealthServer {
  readonly port: number;
  /** The address it listens on: '::' (IPv6 and IPv4), or '0.0.0.0' where the host has no IPv6. */
  readonly host: string;
  close(): Promise<void>;
}

/** Every address, IPv6 and IPv4 (Node clears IPV6_V6ONLY), so probes reach it on any cluster. */
export const ANY_HOST = '::';
const ANY_IPV4_HOST = '0.0.0.0';
/** What listening on '::' fails with where the kernel has no IPv6 (disabled, or a v4-only container). */
const NO_IPV6 = new Set(['EAFNOSUPPORT', 'EADDRNOTAVAIL']);

/**
 * Listens on host; when that is '::' and the host has no IPv6, on 0.0.0.0 instead (logged).
 * Returns the host it listens on.
 */
export async function listenWithIpv4Fallback(
  listen: (host: string) => Promise<void>,
  host: string,
  logger: Pick<Logger, 'warn'>,
): Promise<string> {
  try {
    await listen(host);
    return host;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException | null)?.code;
    if (host !== ANY_HOST || !code || !NO_IPV6.has(code)) throw err;
    logger.warn({ code }, `no IPv6 here: listening on ${ANY_IPV4_HOST} instead of ${ANY_HOST}`);
    await listen(ANY_IPV4_HOST);
    return ANY_IPV4_HOST;
  }
}

/**
 * Serves /healthz (the process works, or only a restart mends it), /readyz (its
 * dependencies answer) and /metrics (Prometheus) for services that have no HTTP server of
 * their own.
 */
export async function startHealthServer(options: {
  port: number;
  /** Default '::' (every IPv6 and IPv4 address), falling back to 0.0.0.0 without IPv6. */
  host?: string;
  registry: Registry;
  readiness: ReadinessCheck;
  /** When a check is false /healthz answers 503, so the kubelet restarts the container. */
  liveness?: LivenessCheck;
  logger: Logger;
}): Promise<HealthServer> {
  const { registry, readiness, logger } = options;
  const liveness: LivenessCheck = options.liveness ?? (async () => ({}));
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const reply = (status: number, type: string, body: string) => {
      res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
      res.end(body);
    };
    if (path === '/healthz') {
      liveness()
        .then((checks) => {
          const alive = Object.values(checks).every(Boolean);
          if (!alive) logger.error({ checks }, 'liveness failing: the process needs a restart');
          reply(
            alive ? 200 : 503,
            'application/json',
            JSON.stringify(alive ? { status: 'ok', checks } : { status: 'failing', checks }),
          );
        })
        .catch((err: unknown) => {
          logger.error({ err }, 'liveness check failed');
          reply(503, 'application/json', '{"status":"failing"}');
        });
      return undefined;
    }
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
  const host = await listenWithIpv4Fallback(
    (at) =>
      new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(options.port, at, () => {
          server.off('error', reject);
          resolve();
        });
      }),
    options.host ?? ANY_HOST,
    logger,
  );
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : options.port;
  return {
    port,
    host,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
