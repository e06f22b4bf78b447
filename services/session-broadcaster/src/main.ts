import { loadOrExit } from '@twofold/config';
import { topicCatalog } from '@twofold/contracts';
import { createEventProducer, createKafka } from '@twofold/kafka';
import { createRedis } from '@twofold/redis';
import {
  createLogger,
  createServiceMetrics,
  createShutdown,
  startHealthServer,
  stopOnSignals,
  stopTracing,
} from '@twofold/telemetry';
import { loadSessionBroadcasterConfig } from './config.js';
import { buildSessionBroadcaster } from './session-broadcaster.js';

const config = loadOrExit(loadSessionBroadcasterConfig, 'session-broadcaster');
const logger = createLogger({ service: 'session-broadcaster', level: config.logLevel });
const metrics = createServiceMetrics('session-broadcaster');
const kafka = createKafka({ brokers: config.kafka.brokers, clientId: config.kafka.clientId, logger });
const producer = createEventProducer(kafka, { topics: topicCatalog(config.kafka.topicPrefix), logger });
const redis = createRedis(config.redis.url, 'state');

const service = buildSessionBroadcaster({
  kafka,
  producer,
  redis,
  logger,
  metrics,
  groupId: `${config.kafka.groupPrefix}twofold-session-broadcaster`,
  keyPrefix: config.redis.keyPrefix,
});

await producer.connect();
await service.start();
const health = await startHealthServer({
  port: config.metricsPort,
  registry: metrics.registry,
  readiness: service.readiness,
  logger,
});
logger.info({ port: health.port }, 'session-broadcaster started');

stopOnSignals(
  createShutdown({
    logger,
    timeoutMs: config.shutdownTimeoutMs,
    steps: [
      { name: 'consumer', close: service.stop },
      { name: 'producer', close: producer.disconnect },
      { name: 'redis', close: () => redis.quit() },
      { name: 'health', close: health.close },
      { name: 'tracing', close: stopTracing },
    ],
  }),
  logger,
);
