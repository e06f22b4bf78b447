import { createBatchConsumer, type EventProducer, type Kafka } from '@twofold/kafka';
import { pingPostgres, type AuditRepository, type Pool } from '@twofold/store';
import type { Logger, ServiceMetrics } from '@twofold/telemetry';
import { auditRowFromDlq, auditRowFromEvent } from './audit-row.js';

export interface AuditSinkDeps {
  kafka: Kafka;
  producer: EventProducer;
  pool: Pool;
  audit: AuditRepository;
  logger: Logger;
  metrics: ServiceMetrics;
  groupId: string;
  sessionTimeoutMs?: number;
}

/**
 * Stores every event of every topic once. A batch is one multi-row insert that skips
 * rows already present, and offsets are committed only after Postgres committed; while
 * Postgres is down the batch is retried (never skipped), so nothing is lost.
 */
export function buildAuditSink(deps: AuditSinkDeps) {
  const consumer = createBatchConsumer({
    kafka: deps.kafka,
    groupId: deps.groupId,
    roles: ['login', 'secondFactor', 'security', 'session', 'admin', 'dlq'],
    producer: deps.producer,
    logger: deps.logger,
    metrics: deps.metrics,
    partitionsConsumedConcurrently: 4,
    ...(deps.sessionTimeoutMs ? { sessionTimeoutMs: deps.sessionTimeoutMs } : {}),
    handle: async (batch) => {
      await deps.audit.insertMany(batch.map(auditRowFromEvent));
    },
    handleDlq: async (items) => {
      await deps.audit.insertMany(items.map(auditRowFromDlq));
    },
  });
  return {
    start: () => consumer.start(),
    stop: () => consumer.stop(),
    async readiness() {
      return {
        kafka: consumer.isReady() && deps.producer.isConnected(),
        postgres: await pingPostgres(deps.pool),
      };
    },
  };
}
