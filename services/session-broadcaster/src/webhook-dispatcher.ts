import { signWebhook, WEBHOOK_HEADERS } from '@twofold/client';
import { createWorker, UnrecoverableError, type Worker } from '@twofold/redis';
import {
  createSessionWebhookQueue,
  sessionWebhookQueueName,
  type SessionWebhookJob,
  type SessionWebhookQueue,
} from '@twofold/state';
import type { WebhookTarget } from '@twofold/store';
import { Counter, Histogram, type Logger, type ServiceMetrics } from '@twofold/telemetry';
import type { WebhookSettings } from './config.js';
import type { SessionAnnouncement } from './session-change.js';

/** A non-2xx answer or a network failure: retried with backoff until the attempts run out. */
export class WebhookDeliveryError extends Error {
  readonly retriable = true;
  constructor(
    readonly appId: string,
    detail: string,
  ) {
    super(`webhook to ${appId} failed: ${detail}`);
    this.name = 'WebhookDeliveryError';
  }
}

interface AppLane {
  target: WebhookTarget;
  queue: SessionWebhookQueue;
  worker: Worker<SessionWebhookJob>;
}

function webhookMetrics(metrics: ServiceMetrics) {
  const registry = metrics.registry;
  return {
    deliveries:
      (registry.getSingleMetric('twofold_webhook_deliveries_total') as
        Counter<'app' | 'outcome'> | undefined) ??
      new Counter({
        name: 'twofold_webhook_deliveries_total',
        help: 'Session webhook attempts by app and outcome (delivered, failed, dead_lettered)',
        labelNames: ['app', 'outcome'],
        registers: [registry],
      }),
    latency:
      (registry.getSingleMetric('twofold_webhook_request_seconds') as Histogram<'app'> | undefined) ??
      new Histogram({
        name: 'twofold_webhook_request_seconds',
        help: 'Duration of one webhook request',
        labelNames: ['app'],
        buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
        registers: [registry],
      }),
  };
}

/**
 * Delivers session events to every app with a webhook URL: a BullMQ queue and worker per
 * app (a dead app's retries and timeouts only fill its own lane), exponential backoff, a
 * retry limit, then the queue's failed set as the dead-letter list.
 */
export function createWebhookDispatcher(deps: {
  redisUrl: string;
  keyPrefix: string;
  /** The apps to deliver to (re-read every settings.refreshMs). */
  targets: () => Promise<WebhookTarget[]>;
  settings: WebhookSettings;
  logger: Logger;
  metrics: ServiceMetrics;
}) {
  const { settings } = deps;
  const log = deps.logger.child({ component: 'webhook-dispatcher' });
  const metrics = webhookMetrics(deps.metrics);
  const lanes = new Map<string, AppLane>();
  let timer: NodeJS.Timeout | undefined;
  let refreshing: Promise<void> | undefined;
  let healthy = false;
  let stopped = false;

  async function deliver(appId: string, job: SessionWebhookJob): Promise<void> {
    const lane = lanes.get(appId);
    if (!lane) throw new UnrecoverableError(`app ${appId} no longer has a webhook URL`);
    const timestamp = Math.floor(Date.now() / 1000);
    const started = process.hrtime.bigint();
    let status: number;
    try {
      const response = await fetch(lane.target.webhookUrl, {
        method: 'POST',
        redirect: 'manual',
        signal: AbortSignal.timeout(settings.timeoutMs),
        headers: {
          'content-type': 'application/json',
          'user-agent': 'twofold-webhooks/1',
          [WEBHOOK_HEADERS.id]: job.eventId,
          [WEBHOOK_HEADERS.timestamp]: String(timestamp),
          [WEBHOOK_HEADERS.signature]: signWebhook({
            secret: lane.target.webhookSecret,
            id: job.eventId,
            timestamp,
            body: job.body,
          }),
        },
        body: job.body,
      });
      status = response.status;
      await response.arrayBuffer().catch(() => undefined);
    } catch (err) {
      metrics.deliveries.inc({ app: appId, outcome: 'failed' });
      const reason =
        (err as Error).name === 'TimeoutError'
          ? `no answer within ${settings.timeoutMs} ms`
          : String((err as Error).cause ?? err);
      throw new WebhookDeliveryError(appId, reason);
    } finally {
      metrics.latency.observe({ app: appId }, Number(process.hrtime.bigint() - started) / 1e9);
    }
    if (status < 200 || status >= 300) {
      metrics.deliveries.inc({ app: appId, outcome: 'failed' });
      throw new WebhookDeliveryError(appId, `HTTP ${status}`);
    }
    metrics.deliveries.inc({ app: appId, outcome: 'delivered' });
  }

  function openLane(target: WebhookTarget): AppLane {
    const options = { redisUrl: deps.redisUrl, prefix: deps.keyPrefix };
    const queue = createSessionWebhookQueue(target.appId, options);
    const worker = createWorker<SessionWebhookJob>(
      sessionWebhookQueueName(target.appId),
      (job) => deliver(target.appId, job.data),
      { url: deps.redisUrl, prefix: deps.keyPrefix, concurrency: settings.concurrency },
    );
    worker.on('error', (err) => log.error({ err, appId: target.appId }, 'webhook worker error'));
    worker.on('failed', (job, err) => {
      if (!job) return;
      const final = job.attemptsMade >= (job.opts.attempts ?? 1) || err instanceof UnrecoverableError;
      if (final) {
        metrics.deliveries.inc({ app: target.appId, outcome: 'dead_lettered' });
        log.warn(
          { appId: target.appId, eventId: job.data.eventId, attempts: job.attemptsMade, reason: err.message },
          'webhook dead-lettered',
        );
      } else {
        log.debug({ appId: target.appId, eventId: job.data.eventId, attempt: job.attemptsMade }, err.message);
      }
    });
    return { target, queue, worker };
  }

  async function refresh(): Promise<void> {
    const targets = await deps.targets();
    if (stopped) return;
    const current = new Set(targets.map((t) => t.appId));
    for (const target of targets) {
      const lane = lanes.get(target.appId);
      if (lane) lane.target = target;
      else lanes.set(target.appId, openLane(target));
    }
    for (const [appId, lane] of lanes) {
      if (current.has(appId)) continue;
      // Undelivered jobs stay queued; they resume if the app gets a URL again.
      await lane.worker.close();
      await lane.queue.close();
      lanes.delete(appId);
    }
    healthy = true;
  }

  const refreshNow = () =>
    (refreshing ??= refresh()
      .catch((err: unknown) => {
        healthy = false;
        log.error({ err }, 'could not read the webhook targets; keeping the last known ones');
      })
      .finally(() => (refreshing = undefined)));

  return {
    async start(): Promise<void> {
      await refresh();
      timer = setInterval(() => void refreshNow(), settings.refreshMs);
      timer.unref();
    },
    /** Queues one delivery per app and event; an event id already queued for an app is not queued twice. */
    async enqueue(events: readonly SessionAnnouncement[]): Promise<void> {
      if (events.length === 0 || lanes.size === 0) return;
      const jobs = events.map((event) => ({
        name: event.type,
        data: {
          eventId: event.id,
          type: event.type,
          session: event.data.session,
          body: JSON.stringify(event),
        },
        opts: {
          jobId: event.id,
          attempts: settings.attempts,
          backoff: { type: 'exponential', delay: settings.backoffMs, jitter: 0.2 },
          removeOnComplete: { age: 3_600, count: 10_000 },
          removeOnFail: { age: 14 * 86_400, count: 100_000 },
        },
      }));
      await Promise.all([...lanes.values()].map((lane) => lane.queue.addBulk(jobs)));
    },
    /** Reads the apps again now (tests; an admin change that must apply at once). */
    refresh: refreshNow,
    isReady: () => healthy && !stopped,
    async stop(): Promise<void> {
      stopped = true;
      if (timer) clearInterval(timer);
      await refreshing;
      // Workers finish the requests in flight first; the lanes stay until then.
      const all = [...lanes.values()];
      await Promise.all(all.map((lane) => lane.worker.close()));
      await Promise.all(all.map((lane) => lane.queue.close()));
      lanes.clear();
    },
  };
}
export type WebhookDispatcher = ReturnType<typeof createWebhookDispatcher>;
