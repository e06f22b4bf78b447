import { loadOrExit } from '@twofold/config';
import { topicCatalog } from '@twofold/contracts';
import { createEventProducer, createKafka } from '@twofold/kafka';
import { createAuditRepository, createPool } from '@twofold/store';
import {
  createLogger,
  createServiceMetrics,
  consumerLiveness,
  createShutdown,
  startHealthServer,
  stopOnSignals,
  stopTracing,
} from '@twofold/telemetry';
import { createAuditPartitionsJob } from './audit-partitions.worker.js';
import { buildAuditSink } from './audit-sink.js';
import { loadAuditSinkConfig } from './config.js';

const config = loadOrExit(loadAuditSinkConfig, 'audit-sink');
const logger = createLogger({ service: 'audit-sink', level: config.logLevel });
const metrics = createServiceMetrics('audit-sink');
const kafka = createKafka({ ...config.kafka, logger });
const producer = createEventProducer(kafka, { topics: topicCatalog(config.kafka.topicPrefix), logger });
const pool = createPool({
  url: config.database.url,
  schema: config.database.schema,
  max: config.database.poolSize,
});

const audit = createAuditRepository(pool, {
  // The batch's query fails with the same error and is retried; this only says why.
  onConnectionError: (err) => logger.warn({ err }, 'Postgres connection lost during a batch'),
});

const sink = buildAuditSink({
  kafka,
  producer,
  pool,
  audit,
  logger,
  metrics,
  groupId: `${config.kafka.groupPrefix}twofold-audit-sink`,
  partitionsConsumedConcurrently: config.audit.concurrentPartitions,
  partitions: createAuditPartitionsJob({
    audit,
    logger,
    registry: metrics.registry,
    redisUrl: config.redis.url,
    keyPrefix: config.redis.keyPrefix,
    retentionDays: config.audit.retentionDays,
    daysAhead: config.audit.partitionsAheadDays,
    everyMs: config.audit.maintenanceIntervalMs,
  }),
});

await producer.connect();
await sink.start();
const health = await startHealthServer({
  port: config.metricsPort,
  host: config.metricsHost,
  registry: metrics.registry,
  readiness: sink.readiness,
  // A consumer crashed without a restart fails /healthz: the kubelet restarts the pod.
  liveness: consumerLiveness(metrics),
  logger,
});
logger.info({ host: health.host, port: health.port }, 'audit sink started');

stopOnSignals(
  createShutdown({
    logger,
    timeoutMs: config.shutdownTimeoutMs,
    steps: [
      { name: 'consumer and upkeep worker', close: sink.stop },
      { name: 'producer', close: producer.disconnect },
      { name: 'postgres', close: () => pool.end() },
      { name: 'health', close: health.close },
      { name: 'tracing', close: stopTracing },
    ],
  }),
  logger,
);
