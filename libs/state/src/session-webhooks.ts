import { createHash } from 'node:crypto';
import { createQueue, type Queue } from '@twofold/redis';

/**
 * Webhook deliveries of session events: one BullMQ queue per app, so a slow or dead app
 * only ever backs up its own queue. A job carries the events of one consumed batch for one
 * app (one HTTP request per event, sent in parallel); when some fail, the job keeps only
 * those and is retried with backoff. Jobs that used every attempt stay in the queue's
 * failed set: the dead-letter list admins read and replay, event by event.
 */

/** One event to POST: the exact body (a CloudEvent as JSON), signed at each attempt. */
export interface SessionWebhookDelivery {
  eventId: string;
  type: string;
  session: string;
  body: string;
  /** Why the last attempt failed (set when the job is retried or dead-lettered). */
  lastError?: string;
}

export interface SessionWebhookJob {
  deliveries: SessionWebhookDelivery[];
}

export function sessionWebhookQueueName(appId: string): string {
  return `session-webhooks-${appId}`;
}

/** A job id per set of events: the same batch redelivered is not queued twice. */
export function sessionWebhookJobId(deliveries: readonly { eventId: string }[]): string {
  const hash = createHash('sha256');
  for (const d of deliveries) hash.update(`${d.eventId}\n`);
  return hash.digest('base64url').slice(0, 32);
}

export interface WebhookDeadLetter {
  appId: string;
  eventId: string;
  type: string;
  session: string;
  attempts: number;
  failedReason: string;
  failedAt: string | null;
  enqueuedAt: string;
}

export type SessionWebhookQueue = Queue<SessionWebhookJob>;

export function createSessionWebhookQueue(appId: string, options: { redisUrl: string; prefix: string }) {
  return createQueue<SessionWebhookJob>(sessionWebhookQueueName(appId), {
    url: options.redisUrl,
    prefix: options.prefix,
  });
}

/** Lists and replays dead-lettered webhook deliveries (the admin side). */
export function createWebhookDeadLetters(options: { redisUrl: string; prefix: string }) {
  const queues = new Map<string, SessionWebhookQueue>();
  const queueOf = (appId: string): SessionWebhookQueue => {
    let queue = queues.get(appId);
    if (!queue) queues.set(appId, (queue = createSessionWebhookQueue(appId, options)));
    return queue;
  };

  return {
    /** Dead letters of each app, newest jobs first, at most `limit` per app. */
    async list(appIds: readonly string[], limit = 100): Promise<WebhookDeadLetter[]> {
      const perApp = await Promise.all(
        appIds.map(async (appId) => {
          const letters: WebhookDeadLetter[] = [];
          for (let start = 0; letters.length < limit; start += 100) {
            const jobs = await queueOf(appId).getFailed(start, start + 99);
            for (const job of jobs) {
              for (const d of job.data.deliveries ?? []) {
                letters.push({
                  appId,
                  eventId: d.eventId,
                  type: d.type,
                  session: d.session,
                  attempts: job.attemptsMade,
                  failedReason: d.lastError ?? job.failedReason ?? '',
                  failedAt: job.finishedOn ? new Date(job.finishedOn).toISOString() : null,
                  enqueuedAt: new Date(job.timestamp).toISOString(),
                });
              }
            }
            if (jobs.length < 100) break;
          }
          return letters.slice(0, limit);
        }),
      );
      return perApp.flat();
    },
    /**
     * Delivers dead letters again with a fresh round of attempts: all of the app's when no
     * ids are given, else those named (ids that are not dead letters are skipped). Returns
     * the event ids replayed.
     */
    async replay(appId: string, eventIds?: readonly string[]): Promise<string[]> {
      const queue = queueOf(appId);
      const wanted = eventIds ? new Set(eventIds) : undefined;
      const replayed: string[] = [];
      for (const job of await queue.getFailed(0, -1)) {
        const deliveries = job.data.deliveries ?? [];
        const chosen = wanted ? deliveries.filter((d) => wanted.has(d.eventId)) : deliveries;
        if (chosen.length === 0 || !job.id) continue;
        if (chosen.length === deliveries.length) {
          await job.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true });
        } else {
          // Only some of the job's events: they go out as a new job; the rest stay dead letters.
          const fresh = chosen.map(({ lastError: _lastError, ...d }) => d);
          await queue.add(
            'replay',
            { deliveries: fresh },
            { ...job.opts, jobId: sessionWebhookJobId(fresh) },
          );
          await job.updateData({ deliveries: deliveries.filter((d) => !chosen.includes(d)) });
        }
        replayed.push(...chosen.map((d) => d.eventId));
      }
      return replayed;
    },
    async close(): Promise<void> {
      await Promise.all([...queues.values()].map((q) => q.close()));
      queues.clear();
    },
  };
}
export type WebhookDeadLetters = ReturnType<typeof createWebhookDeadLetters>;
