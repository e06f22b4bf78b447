import { loadOrExit } from '@twofold/config';
import { topicCatalog } from '@twofold/contracts';
import { createEventProducer, createKafka } from '@twofold/kafka';
import { createRedis } from '@twofold/redis';
import { createPolicyRepository, createPool } from '@twofold/store';
import {
  createLogger,
  createServiceMetrics,
  consumerLiveness,
  createShutdown,
  startHealthServer,
  stopOnSignals,
  stopTracing,
} from '@twofold/telemetry';
import { loadLockoutDetectorConfig } from './config.js';
import { buildLockoutDetector } from './lockout-detector.js';

const config = loadOrExit(loadLockoutDetectorConfig, 'lockout-detector');
const logger = createLogger({ service: 'lockout-detector', level: config.logLevel });
const metrics = createServiceMetrics('lockout-detector');
const kafka = createKafka({ ...config.kafka, logger });
const producer = createEventProducer(kafka, { topics: topicCatalog(config.kafka.topicPrefix), logger });
// Counting scripts run per batch and queue behind each other under load: a timeout would
// only retry the batch (more load), so it is wide; a dead Redis still fails at once.
const redis = createRedis(config.redis.url, 'state', { commandTimeout: 30_000 });
// Only the admin policy's version and lockout entry are read (every 500 ms, one query).
const pool = createPool({
  url: config.database.url,
  schema: config.database.schema,
  max: 2,
  applicationName: 'twofold-lockout-detector',
});

const service = buildLockoutDetector({
  kafka,
  producer,
  redis,
  logger,
  metrics,
  groupId: `${config.kafka.groupPrefix}twofold-lockout-detector`,
  keyPrefix: config.redis.keyPrefix,
  redisUrl: config.redis.url,
  rules: config.lockout.rules,
  policy: createPolicyRepository(pool),
  partitionsConsumedConcurrently: config.lockout.partitionsConcurrency,
  basesPerScript: config.lockout.basesPerScript,
  liftConcurrency: config.lockout.liftConcurrency,
});

await producer.connect();
await service.start();
const health = await startHealthServer({
  port: config.metricsPort,
  host: config.metricsHost,
  registry: metrics.registry,
  readiness: service.readiness,
  // A consumer crashed without a restart fails /healthz: the kubelet restarts the pod.
  liveness: consumerLiveness(metrics),
  logger,
});
logger.info({ host: health.host, port: health.port }, 'lockout-detector started');

stopOnSignals(
  createShutdown({
    logger,
    timeoutMs: config.shutdownTimeoutMs,
    steps: [
      { name: 'consumer, lifts, spray monitor', close: service.stop },
      { name: 'producer', close: producer.disconnect },
      { name: 'redis', close: () => redis.quit() },
      { name: 'postgres', close: () => pool.end() },
      { name: 'health', close: health.close },
      { name: 'tracing', close: stopTracing },
    ],
  }),
  logger,
);
