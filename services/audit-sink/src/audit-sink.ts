import { createBatchConsumer, type ConsumedEvent, type EventProducer, type Kafka } from '@twofold/kafka';
import {
  UnstorableJsonError,
  assertStorableJson,
  pingPostgres,
  type AuditRow,
  type AuditWriter,
  type Pool,
} from '@twofold/store';
import { Counter, type Logger, type ServiceMetrics } from '@twofold/telemetry';
import type { AuditPartitionsJob } from './audit-partitions.worker.js';
import { auditRowFromDlq, auditRowFromEvent } from './audit-row.js';

export interface AuditSinkDeps {
  kafka: Kafka;
  producer: EventProducer;
  pool: Pool;
  audit: AuditWriter;
  logger: Logger;
  metrics: ServiceMetrics;
  groupId: string;
  sessionTimeoutMs?: number;
  /** Kafka partitions handled at once (each batch is one transaction on its own connection). */
  partitionsConsumedConcurrently?: number;
  /** Partition upkeep (create ahead, drop past retention); absent in tests that do not need it. */
  partitions?: AuditPartitionsJob;
}

/** Rows inserted vs duplicates skipped, the sink's own measure of exactly-once. */
function rowsCounter(metrics: ServiceMetrics): Counter<'outcome'> {
  const name = 'twofold_audit_rows_total';
  return (
    (metrics.registry.getSingleMetric(name) as Counter<'outcome'> | undefined) ??
    new Counter({
      name,
      help: 'Audit rows by outcome: inserted, or duplicate (already stored: a redelivery), or rejected (not storable, sent to the DLQ)',
      labelNames: ['outcome'],
      registers: [metrics.registry],
    })
  );
}

/**
 * Stores every event of every topic once. A batch is one transaction that extends the
 * hash chains with the rows not stored yet, and offsets are committed only after Postgres
 * committed; while Postgres is down the batch is retried (never skipped), so nothing is
 * lost. An event that cannot be stored as jsonb goes to the DLQ, where this sink records
 * its bytes as a DLQ row.
 */
export function buildAuditSink(deps: AuditSinkDeps) {
  const rows = rowsCounter(deps.metrics);
  const log = deps.logger.child({ component: 'audit-sink' });

  async function write(batch: readonly AuditRow[]): Promise<void> {
    if (batch.length === 0) return;
    const inserted = await deps.audit.insertMany(batch);
    rows.inc({ outcome: 'inserted' }, inserted);
    if (inserted < batch.length) rows.inc({ outcome: 'duplicate' }, batch.length - inserted);
  }

  const consumer = createBatchConsumer({
    kafka: deps.kafka,
    groupId: deps.groupId,
    roles: ['login', 'secondFactor', 'security', 'session', 'admin', 'dlq'],
    producer: deps.producer,
    logger: deps.logger,
    metrics: deps.metrics,
    partitionsConsumedConcurrently: deps.partitionsConsumedConcurrently ?? 4,
    ...(deps.sessionTimeoutMs ? { sessionTimeoutMs: deps.sessionTimeoutMs } : {}),
    handle: async (batch) => {
      const storable: AuditRow[] = [];
      const rejected: { item: ConsumedEvent; reason: string }[] = [];
      for (const item of batch) {
        try {
          assertStorableJson(item.event);
          storable.push(auditRowFromEvent(item));
        } catch (err) {
          if (!(err instanceof UnstorableJsonError)) throw err;
          rejected.push({ item, reason: `not storable in the audit trail: ${err.message}` });
        }
      }
      await write(storable);
      if (rejected.length) {
        rows.inc({ outcome: 'rejected' }, rejected.length);
        log.warn({ count: rejected.length }, 'events not storable; sent to the DLQ');
      }
      return { rejected };
    },
    handleDlq: (items) => write(items.map(auditRowFromDlq)),
  });

  let stopping: Promise<void> | undefined;
  return {
    async start() {
      await deps.partitions?.start();
      await consumer.start();
    },
    /** Finishes the batch in flight, leaves the group, then stops the upkeep worker. */
    stop() {
      stopping ??= (async () => {
        await consumer.stop().catch((err: unknown) => log.error({ err }, 'stopping the consumer failed'));
        await deps.partitions?.stop();
      })();
      return stopping;
    },
    async readiness() {
      return {
        kafka: consumer.isReady() && deps.producer.isConnected(),
        postgres: await pingPostgres(deps.pool),
      };
    },
  };
}
