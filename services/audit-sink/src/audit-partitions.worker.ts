import { createQueue, createWorker, type Queue, type Worker } from '@twofold/redis';
import type { AuditRepository } from '@twofold/store';
import { Counter, Gauge, type Logger, type Registry } from '@twofold/telemetry';

export const AUDIT_PARTITIONS_QUEUE = 'audit-partitions';
const SCHEDULER_ID = 'audit-partitions';

export interface AuditPartitionsJobDeps {
  audit: Pick<AuditRepository, 'maintainPartitions'>;
  logger: Logger;
  registry: Registry;
  redisUrl: string;
  /** REDIS_KEY_PREFIX: the queue lives under it, like every BullMQ queue of twofold. */
  keyPrefix: string;
  retentionDays: number;
  daysAhead: number;
  everyMs: number;
}

export interface AuditPartitionsJob {
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Resolves after the next successful run (tests, start-up checks). */
  nextRun(): Promise<{ created: number; dropped: string[] }>;
}

function metric<T>(registry: Registry, name: string, make: () => T): T {
  return (registry.getSingleMetric(name) as T | undefined) ?? make();
}

/**
 * Partition upkeep on a BullMQ job scheduler: every replica upserts the same scheduler
 * (idempotent) and runs a worker, and BullMQ hands each run to one of them. A run creates
 * the daily partitions ahead of time and drops those past the retention. Rows never wait
 * for it: an event whose day has no partition lands in the DEFAULT partition and moves to
 * its own when that day's partition is created.
 */
export function createAuditPartitionsJob(deps: AuditPartitionsJobDeps): AuditPartitionsJob {
  const log = deps.logger.child({ component: 'audit-partitions' });
  const dropped = metric(
    deps.registry,
    'twofold_audit_partitions_dropped_total',
    () =>
      new Counter({
        name: 'twofold_audit_partitions_dropped_total',
        help: 'Daily audit partitions dropped by the retention job',
        registers: [deps.registry],
      }),
  );
  const lastSuccess = metric(
    deps.registry,
    'twofold_audit_partitions_last_success_seconds',
    () =>
      new Gauge({
        name: 'twofold_audit_partitions_last_success_seconds',
        help: 'Unix time of the last successful partition upkeep (create ahead, drop past retention)',
        registers: [deps.registry],
      }),
  );
  let queue: Queue | undefined;
  let worker: Worker | undefined;
  let stopping: Promise<void> | undefined;
  const waiters: ((result: { created: number; dropped: string[] }) => void)[] = [];

  return {
    async start() {
      queue = createQueue(AUDIT_PARTITIONS_QUEUE, { url: deps.redisUrl, prefix: deps.keyPrefix });
      worker = createWorker(
        AUDIT_PARTITIONS_QUEUE,
        async () => {
          const result = await deps.audit.maintainPartitions({
            daysAhead: deps.daysAhead,
            retentionDays: deps.retentionDays,
          });
          dropped.inc(result.dropped.length);
          lastSuccess.set(Date.now() / 1000);
          log.info(
            { created: result.created, dropped: result.dropped, retentionDays: deps.retentionDays },
            'audit partitions maintained',
          );
          for (const resolve of waiters.splice(0)) resolve(result);
          return result;
        },
        { url: deps.redisUrl, prefix: deps.keyPrefix, concurrency: 1 },
      );
      worker.on('failed', (job, err) =>
        log.error({ err, attempt: job?.attemptsMade }, 'audit partition upkeep failed'),
      );
      worker.on('error', (err) => log.warn({ err }, 'audit partition worker error'));
      const opts = {
        attempts: 5,
        backoff: { type: 'exponential', delay: 5_000 },
        removeOnComplete: 20,
        removeOnFail: 100,
      };
      await queue.upsertJobScheduler(SCHEDULER_ID, { every: deps.everyMs }, { name: 'maintain', opts });
      // And once now: a scheduler that already existed keeps its cadence, so a fresh start
      // (new retention, a cluster restored from backup) would otherwise wait for the next run.
      await queue.add('maintain-at-start', {}, opts);
    },
    stop() {
      stopping ??= (async () => {
        await worker?.close().catch((err: unknown) => log.warn({ err }, 'closing the worker failed'));
        await queue?.close().catch((err: unknown) => log.warn({ err }, 'closing the queue failed'));
      })();
      return stopping;
    },
    nextRun: () => new Promise((resolve) => waiters.push(resolve)),
  };
}
