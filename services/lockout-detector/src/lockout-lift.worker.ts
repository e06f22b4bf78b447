import { createHash } from 'node:crypto';
import type { EventProducer } from '@twofold/kafka';
import { lockoutLiftedEvent } from '@twofold/lockout';
import { createQueue, createWorker } from '@twofold/redis';
import type { ImposedLockout, LockoutRecord, LockoutRef, LockoutStore } from '@twofold/state';
import type { Logger } from '@twofold/telemetry';
import type { LockoutMetrics } from './lockout.metrics.js';

export const LIFT_QUEUE = 'lockout-lift';

/** A lift job: where the lockout is and what its `lockout.lifted` says. */
export interface LiftJob {
  readonly ref: LockoutRef;
  readonly record: Pick<LockoutRecord, 'lockId' | 'scope' | 'key' | 'mode' | 'rule'>;
  /** ISO end of the lockout: the time of its `lockout.lifted` (absent in jobs of older versions). */
  readonly until?: string;
}

export interface LiftScheduler {
  /** Schedules the lift of each lockout at its end (idempotent per lockout). */
  schedule(lockouts: readonly ImposedLockout[], now: number): Promise<void>;
}

/**
 * Retries of a lift job: the lift is claimed in Redis before it is announced, so a job that
 * fails for good loses that `lockout.lifted`. Exponential from 500 ms, capped at 5 min,
 * for over a day: a long Kafka outage delays lifts, it does not drop them.
 */
export const LIFT_RETRY = { attempts: 300, firstDelayMs: 500, maxDelayMs: 5 * 60_000 } as const;

/** Delay (ms) before the retry that follows attempt `attemptsMade` (BullMQ's backoff strategy). */
export function liftRetryDelay(attemptsMade: number): number {
  return Math.min(LIFT_RETRY.firstDelayMs * 2 ** Math.max(attemptsMade - 1, 0), LIFT_RETRY.maxDelayMs);
}

/** BullMQ job id of a lockout's lift (no `:` allowed; stable, so scheduling twice is once). */
function jobIdOf(ref: LockoutRef, suffix = ''): string {
  return createHash('sha256').update(`${ref.base}\n${ref.lockSub}\n${ref.lockId}${suffix}`).digest('hex');
}

/**
 * Lifting at expiry: a BullMQ delayed job per lockout, due at its end. The job lifts the
 * lockout unless an admin lifted it first (decided atomically in Redis, so exactly one
 * `lockout.lifted` id is announced per lockout), then publishes `lockout.lifted` by
 * `expiry`, also when a newer lockout of the same key is in force by then. A failed
 * publish is retried by BullMQ with backoff ({@link LIFT_RETRY}); the retry announces the
 * same event id.
 */
export function createLockoutLifts(deps: {
  redisUrl: string;
  prefix: string;
  store: LockoutStore;
  producer: EventProducer;
  metrics: LockoutMetrics;
  logger: Logger;
  clock: () => number;
  concurrency: number;
  /** Run the worker in this process (a scheduler alone otherwise). */
  work: boolean;
}) {
  const queue = createQueue<LiftJob>(LIFT_QUEUE, {
    url: deps.redisUrl,
    prefix: deps.prefix,
    defaultJobOptions: {
      attempts: LIFT_RETRY.attempts,
      // Not a built-in type: the worker's backoffStrategy (liftRetryDelay) computes it.
      backoff: { type: 'lift' },
      removeOnComplete: true,
      removeOnFail: 1000,
    },
  });
  const log = deps.logger.child({ component: 'lockout-lift' });

  async function lift(data: LiftJob, jobId: string): Promise<string> {
    const outcome = await deps.store.liftAtExpiry(data.ref, deps.clock());
    if (outcome.status === 'early') {
      // Redis expiry and the job's delay come from two clocks; wait the difference out.
      const wait = outcome.untilMs - deps.clock();
      await queue.add('lift', data, {
        jobId: jobIdOf(data.ref, `@${outcome.untilMs}`),
        delay: Math.max(wait, 0),
      });
      return `rescheduled in ${wait} ms (${jobId})`;
    }
    if (outcome.status !== 'lift') return outcome.status;
    await deps.producer.publish('security', [
      // It ended at its end time, whenever the job ran: a retried job announces the same event.
      lockoutLiftedEvent(data.record, 'expiry', { time: new Date(data.until ?? deps.clock()) }),
    ]);
    deps.metrics.lifted.inc({ scope: data.record.scope, by: 'expiry' });
    return 'lifted';
  }

  const worker = deps.work
    ? createWorker<LiftJob, string>(LIFT_QUEUE, (job) => lift(job.data, job.id ?? ''), {
        url: deps.redisUrl,
        prefix: deps.prefix,
        concurrency: deps.concurrency,
        autorun: false,
        settings: { backoffStrategy: liftRetryDelay },
      })
    : undefined;
  worker?.on('failed', (job, err) => log.warn({ err, jobId: job?.id }, 'lift failed; BullMQ retries it'));
  worker?.on('error', (err) => log.error({ err }, 'lift worker error'));

  let closing: Promise<void> | undefined;
  return {
    scheduler: {
      async schedule(lockouts: readonly ImposedLockout[], now: number): Promise<void> {
        if (lockouts.length === 0) return;
        await queue.addBulk(
          lockouts.map(({ ref, record }) => ({
            name: 'lift',
            data: {
              ref,
              record: {
                lockId: record.lockId,
                scope: record.scope,
                key: record.key,
                mode: record.mode,
                rule: record.rule,
              },
              until: record.until!,
            },
            opts: { jobId: jobIdOf(ref), delay: Math.max(Date.parse(record.until!) - now, 0) },
          })),
        );
      },
    } satisfies LiftScheduler,
    start(): void {
      if (worker) void worker.run().catch((err: unknown) => log.error({ err }, 'lift worker stopped'));
    },
    isRunning: () => (worker ? worker.isRunning() : true),
    close(): Promise<void> {
      closing ??= (async () => {
        await worker?.close().catch((err: unknown) => log.warn({ err }, 'closing the lift worker failed'));
        await queue.close().catch((err: unknown) => log.warn({ err }, 'closing the lift queue failed'));
      })();
      return closing;
    },
  };
}
export type LockoutLifts = ReturnType<typeof createLockoutLifts>;
