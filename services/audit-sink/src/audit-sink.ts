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
 * What Postgres said when it refused the data of a row (SQLSTATE class 22, data exception,
 * or 23, a constraint other than the unique key that marks a redelivery); undefined for
 * anything else (an outage, a bug), which is retried.
 */
function dataRefusal(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code !== 'string' || !/^2[23]/.test(code) || code === '23505') return undefined;
  return `${(err as Error).message} (SQLSTATE ${code})`;
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

  /**
   * Writes the rows; when Postgres refuses the data itself (not an outage), halves the batch
   * until each refused row stands alone, stores the rest in order and returns the refused
   * rows' events for the DLQ. Retried whole instead, one row Postgres can never take would
   * stall its Kafka partition for good (as a year-0 time once did).
   */
  async function writeIsolatingRefused(
    items: readonly ConsumedEvent[],
    batch: readonly AuditRow[],
  ): Promise<{ item: ConsumedEvent; reason: string }[]> {
    try {
      await write(batch);
      return [];
    } catch (err) {
      const refusal = dataRefusal(err);
      if (!refusal) throw err;
      if (batch.length === 1) return [{ item: items[0]!, reason: `Postgres refused it: ${refusal}` }];
      const half = Math.ceil(batch.length / 2);
      return [
        ...(await writeIsolatingRefused(items.slice(0, half), batch.slice(0, half))),
        ...(await writeIsolatingRefused(items.slice(half), batch.slice(half))),
      ];
    }
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
      const storableItems: ConsumedEvent[] = [];
      const rejected: { item: ConsumedEvent; reason: string }[] = [];
      for (const item of batch) {
        try {
          assertStorableJson(item.event);
          storable.push(auditRowFromEvent(item));
          storableItems.push(item);
        } catch (err) {
          if (!(err instanceof UnstorableJsonError)) throw err;
          rejected.push({ item, reason: `not storable in the audit trail: ${err.message}` });
        }
      }
      rejected.push(...(await writeIsolatingRefused(storableItems, storable)));
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
