import type { FastifyInstance } from 'fastify';
import { Counter, Histogram, type ServiceMetrics } from '@twofold/telemetry';

/** Requests by route template and status, and their duration: what the alerts watch. */
export function installHttpMetrics(app: FastifyInstance, metrics: ServiceMetrics): void {
  const requests = new Counter({
    name: 'twofold_http_requests_total',
    help: 'HTTP requests, by route template, method and status',
    labelNames: ['route', 'method', 'status'] as const,
    registers: [metrics.registry],
  });
  const duration = new Histogram({
    name: 'twofold_http_request_duration_seconds',
    help: 'HTTP request duration, by route template',
    labelNames: ['route'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10, 30],
    registers: [metrics.registry],
  });
  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    requests.inc({ route, method: request.method, status: String(reply.statusCode) });
    duration.observe({ route }, reply.elapsedTime / 1000);
  });
}
