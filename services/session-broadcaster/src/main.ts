import { createNetworkDenylist, loadOrExit } from '@twofold/config';
import { topicCatalog } from '@twofold/contracts';
import { createEventProducer, createKafka } from '@twofold/kafka';
import { createRedis, pingRedis } from '@twofold/redis';
import { createAppsRepository, createPolicyRepository, createPool } from '@twofold/store';
import {
  createLogger,
  createServiceMetrics,
  consumerLiveness,
  createShutdown,
  startHealthServer,
  stopOnSignals,
  stopTracing,
} from '@twofold/telemetry';
import { loadSessionBroadcasterConfig } from './config.js';
import { buildSessionBroadcaster } from './session-broadcaster.js';
import { createSessionLifetime } from './session-lifetime.js';
import { createWebhookDispatcher } from './webhook-dispatcher.js';

const config = loadOrExit(loadSessionBroadcasterConfig, 'session-broadcaster');
const logger = createLogger({ service: 'session-broadcaster', level: config.logLevel });
const metrics = createServiceMetrics('session-broadcaster');
const kafka = createKafka({ ...config.kafka, logger });
const producer = createEventProducer(kafka, { topics: topicCatalog(config.kafka.topicPrefix), logger });
// A consumer, not a request path: a slow answer is worth waiting for (a failure retries the batch).
const redis = createRedis(config.redis.url, 'state', { commandTimeout: 5_000 });
const pool = createPool({ url: config.database.url, schema: config.database.schema, max: 2 });
const apps = createAppsRepository(pool);
// The admin policy's session lifetime; the env value until the policy names one.
const lifetime = createSessionLifetime({
  policies: createPolicyRepository(pool),
  fallbackSeconds: config.session.ttlSeconds,
  logger,
});
const webhooks = createWebhookDispatcher({
  redisUrl: config.redis.url,
  keyPrefix: config.redis.keyPrefix,
  targets: () => apps.webhookTargets(),
  settings: config.webhooks,
  logger,
  metrics,
  deliver: config.roles.deliver,
  deniedNetworks: createNetworkDenylist(config.webhookDeniedNetworks),
});

// Role `consume` runs the pipeline; a process with only `deliver` runs the webhook workers
// (so webhook traffic can scale apart from, and never slow, state and SSE propagation).
const service = config.roles.consume
  ? buildSessionBroadcaster({
      kafka,
      producer,
      redis,
      logger,
      metrics,
      groupId: `${config.kafka.groupPrefix}twofold-session-broadcaster`,
      keyPrefix: config.redis.keyPrefix,
      sessionTtlSeconds: lifetime.seconds,
      streamMaxLen: config.session.streamMaxLen,
      webhooks,
    })
  : undefined;

if (service) {
  await lifetime.start();
  await producer.connect();
  await service.start();
} else {
  await webhooks.start();
}
const health = await startHealthServer({
  port: config.metricsPort,
  host: config.metricsHost,
  registry: metrics.registry,
  readiness:
    service?.readiness ?? (async () => ({ redis: await pingRedis(redis), webhooks: webhooks.isReady() })),
  // A consumer crashed without a restart fails /healthz: the kubelet restarts the pod.
  liveness: consumerLiveness(metrics),
  logger,
});
logger.info({ host: health.host, port: health.port, roles: config.roles }, 'session-broadcaster started');

stopOnSignals(
  createShutdown({
    logger,
    timeoutMs: config.shutdownTimeoutMs,
    steps: [
      { name: 'consumer and webhook workers', close: () => (service ? service.stop() : webhooks.stop()) },
      { name: 'producer', close: producer.disconnect },
      { name: 'policy refresh', close: async () => lifetime.stop() },
      { name: 'redis', close: () => redis.quit() },
      { name: 'postgres', close: () => pool.end() },
      { name: 'health', close: health.close },
      { name: 'tracing', close: stopTracing },
    ],
  }),
  logger,
);
