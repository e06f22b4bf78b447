import { createQueue, type Queue } from '@twofold/redis';

/**
 * Webhook deliveries of session events: one BullMQ queue per app, so a slow or dead app
 * only ever backs up its own queue. Jobs that used every attempt stay in the queue's
 * failed set: that is the dead-letter list admins read and replay.
 */

/** One delivery: the exact body (a CloudEvent as JSON) to POST, signed at each attempt. */
export interface SessionWebhookJob {
  eventId: string;
  type: string;
  session: string;
  body: string;
}

export function sessionWebhookQueueName(appId: string): string {
  return `session-webhooks-${appId}`;
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
    /** The newest dead letters of each app, at most `limit` per app. */
    async list(appIds: readonly string[], limit = 100): Promise<WebhookDeadLetter[]> {
      const perApp = await Promise.all(
        appIds.map(async (appId) => {
          const jobs = await queueOf(appId).getFailed(0, Math.max(0, limit - 1));
          return jobs.map((job): WebhookDeadLetter => ({
            appId,
            eventId: job.id ?? job.data.eventId,
            type: job.data.type,
            session: job.data.session,
            attempts: job.attemptsMade,
            failedReason: job.failedReason ?? '',
            failedAt: job.finishedOn ? new Date(job.finishedOn).toISOString() : null,
            enqueuedAt: new Date(job.timestamp).toISOString(),
          }));
        }),
      );
      return perApp.flat();
    },
    /**
     * Puts dead letters back for a fresh round of attempts (all of the app's when no ids
     * are given); returns the event ids replayed. Ids that are not dead letters are skipped.
     */
    async replay(appId: string, eventIds?: readonly string[]): Promise<string[]> {
      const queue = queueOf(appId);
      const jobs = eventIds
        ? await Promise.all(eventIds.map((id) => queue.getJob(id)))
        : await queue.getFailed(0, -1);
      const replayed: string[] = [];
      for (const job of jobs) {
        if (!job?.id || !(await job.isFailed())) continue;
        await job.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true });
        replayed.push(job.id);
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
