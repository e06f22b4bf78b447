import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { ReadinessCheck, ServiceMetrics } from '@twofold/telemetry';

/** Liveness, readiness (Kafka, Redis, Postgres) and Prometheus metrics on the api port. */
export function healthRoute(deps: {
  readiness: ReadinessCheck;
  metrics: ServiceMetrics;
}): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.get('/healthz', { schema: { hide: true } }, async () => ({ status: 'ok' }));
    app.get('/readyz', { schema: { hide: true } }, async (_request, reply) => {
      const checks = await deps.readiness();
      const ready = Object.values(checks).every(Boolean);
      return reply.code(ready ? 200 : 503).send({ ready, checks });
    });
    app.get('/metrics', { schema: { hide: true } }, async (_request, reply) =>
      reply.type(deps.metrics.registry.contentType).send(await deps.metrics.registry.metrics()),
    );
  };
}
