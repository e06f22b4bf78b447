import { Pool } from 'undici';
import { signWebhook, WEBHOOK_HEADERS } from '@twofold/client';
import { DEFAULT_WEBHOOK_DENYLIST, type NetworkDenylist } from '@twofold/config';
import { createWorker, UnrecoverableError, type Worker } from '@twofold/redis';
import {
  createSessionWebhookQueue,
  sessionWebhookJobId,
  sessionWebhookQueueName,
  type SessionWebhookDelivery,
  type SessionWebhookJob,
  type SessionWebhookQueue,
} from '@twofold/state';
import type { WebhookTarget } from '@twofold/store';
import { Counter, Histogram, type Logger, type ServiceMetrics } from '@twofold/telemetry';
import type { WebhookSettings } from './config.js';
import type { SessionAnnouncement } from './session-change.js';
import { guardedConnector, WebhookAddressDeniedError } from './webhook-address-guard.js';

/** Some deliveries of a job failed (non-2xx, refused, timed out): retried with backoff. */
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

/** Jobs of one app in flight at once; requests in flight are bounded by settings.concurrency. */
const JOBS_IN_FLIGHT_PER_APP = 8;

interface AppLane {
  target: WebhookTarget;
  /** Path and query of the webhook URL (the pool holds its origin). */
  path: string;
  queue: SessionWebhookQueue;
  /** Present when this process delivers (role `deliver`). */
  worker?: Worker<SessionWebhookJob>;
  /** Kept-alive connections to the app (undici: half the CPU of node:http per request, measured). */
  connections?: Pool;
}

function webhookMetrics(metrics: ServiceMetrics) {
  const registry = metrics.registry;
  return {
    deliveries:
      (registry.getSingleMetric('twofold_webhook_deliveries_total') as
        Counter<'app' | 'outcome'> | undefined) ??
      new Counter({
        name: 'twofold_webhook_deliveries_total',
        help: 'Session webhook requests by app and outcome (delivered, failed, denied: the address is in WEBHOOK_DENIED_NETWORKS), and events dead-lettered',
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

/** The target's signing keys, decoded once per target rather than once per request. */
const signingKeys = new WeakMap<WebhookTarget, Buffer[]>();
function secretsOf(target: WebhookTarget): Buffer[] {
  let keys = signingKeys.get(target);
  if (!keys) {
    const secrets = [target.webhookSecret, target.previousWebhookSecret].filter((s): s is string => !!s);
    keys = secrets.map((s) => Buffer.from(s.startsWith('whsec_') ? s.slice('whsec_'.length) : s, 'base64'));
    signingKeys.set(target, keys);
  }
  return keys;
}

/**
 * POSTs one body; resolves with the status code and, for a redirect, where it points (never
 * followed: the next hop could be any address, and the signed body is for this URL); rejects on
 * a network error, a denied address or a timeout.
 */
async function post(
  connections: Pool,
  path: string,
  headers: Record<string, string>,
  body: string,
  timeoutMs: number,
): Promise<{ status: number; location?: string }> {
  try {
    const response = await connections.request({
      method: 'POST',
      path,
      headers,
      body,
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
    });
    await response.body.dump();
    const location = response.headers['location'];
    return { status: response.statusCode, ...(typeof location === 'string' ? { location } : {}) };
  } catch (err) {
    // Network errors come as they are (connect ECONNREFUSED …); undici's timeouts say why.
    const code = (err as { code?: string }).code;
    if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') {
      throw new Error(`no answer within ${timeoutMs} ms`, { cause: err });
    }
    throw err;
  }
}

/**
 * Delivers session events to every app with a webhook URL: a BullMQ queue and worker per
 * app (a dead app's retries and timeouts only fill its own lane), exponential backoff, a
 * retry limit, then the queue's failed set as the dead-letter list. One job per consumed
 * batch and app; its events go out as parallel requests on kept-alive connections.
 */
export function createWebhookDispatcher(deps: {
  redisUrl: string;
  keyPrefix: string;
  /** The apps to deliver to (re-read every settings.refreshMs). */
  targets: () => Promise<WebhookTarget[]>;
  settings: WebhookSettings;
  logger: Logger;
  metrics: ServiceMetrics;
  /** Run the delivery workers here (default); false: only queue jobs, another process delivers. */
  deliver?: boolean;
  /** Networks never connected to (WEBHOOK_DENIED_NETWORKS); the default list when absent. */
  deniedNetworks?: NetworkDenylist;
}) {
  const denylist = deps.deniedNetworks ?? DEFAULT_WEBHOOK_DENYLIST;
  const delivering = deps.deliver ?? true;
  const { settings } = deps;
  const log = deps.logger.child({ component: 'webhook-dispatcher' });
  const metrics = webhookMetrics(deps.metrics);
  const lanes = new Map<string, AppLane>();
  let timer: NodeJS.Timeout | undefined;
  let refreshing: Promise<void> | undefined;
  let healthy = false;
  let stopped = false;

  /** Why one delivery failed, and whether another attempt can help; undefined when it arrived. */
  async function deliverOne(
    lane: AppLane,
    delivery: SessionWebhookDelivery,
  ): Promise<{ reason: string; retriable: boolean } | undefined> {
    const appId = lane.target.appId;
    const timestamp = Math.floor(Date.now() / 1000);
    const headers = {
      'content-type': 'application/json',
      'user-agent': 'twofold-webhooks/1',
      [WEBHOOK_HEADERS.id]: delivery.eventId,
      [WEBHOOK_HEADERS.timestamp]: String(timestamp),
      // During a rotation's grace period, a signature by each secret: receivers holding either verify.
      [WEBHOOK_HEADERS.signature]: secretsOf(lane.target)
        .map((secret) => signWebhook({ secret, id: delivery.eventId, timestamp, body: delivery.body }))
        .join(' '),
    };
    const started = process.hrtime.bigint();
    let failure: { reason: string; retriable: boolean } | undefined;
    try {
      const { status, location } = await post(
        lane.connections!,
        lane.path,
        headers,
        delivery.body,
        settings.timeoutMs,
      );
      if (status >= 300 && status < 400 && location)
        failure = {
          reason: `HTTP ${status} redirect to ${location.slice(0, 200)}, not followed`,
          retriable: true,
        };
      else if (status < 200 || status >= 300) failure = { reason: `HTTP ${status}`, retriable: true };
    } catch (err) {
      failure = {
        reason: (err as Error).message || String(err),
        retriable: !(err instanceof WebhookAddressDeniedError),
      };
    }
    if (failure?.retriable === false) {
      metrics.deliveries.inc({ app: appId, outcome: 'denied' });
      return failure;
    }
    metrics.latency.observe({ app: appId }, Number(process.hrtime.bigint() - started) / 1e9);
    metrics.deliveries.inc({ app: appId, outcome: failure ? 'failed' : 'delivered' });
    return failure;
  }

  async function deliver(
    appId: string,
    job: { data: SessionWebhookJob; updateData(d: SessionWebhookJob): Promise<void> },
  ) {
    const lane = lanes.get(appId);
    if (!lane?.connections) throw new UnrecoverableError(`app ${appId} no longer has a webhook URL`);
    const deliveries = job.data.deliveries;
    const failures = await Promise.all(deliveries.map((d) => deliverOne(lane, d)));
    const failed = deliveries.flatMap((d, i) =>
      failures[i] ? [{ ...d, lastError: failures[i].reason }] : [],
    );
    if (failed.length === 0) return;
    // The next attempt (or the dead letter) holds only what did not arrive.
    await job.updateData({ deliveries: failed });
    // A denied address: straight to the dead letters, with the reason; retries cannot help.
    const denied = failures.find((f) => f?.retriable === false);
    if (denied) throw new UnrecoverableError(`webhook to ${appId} not sent: ${denied.reason}`);
    throw new WebhookDeliveryError(
      appId,
      `${failed.length} of ${deliveries.length}: ${failed[0]!.lastError}`,
    );
  }

  function openLane(target: WebhookTarget): AppLane {
    const queue = createSessionWebhookQueue(target.appId, {
      redisUrl: deps.redisUrl,
      prefix: deps.keyPrefix,
    });
    const url = new URL(target.webhookUrl);
    const path = url.pathname + url.search;
    if (!delivering) return { target, path, queue };
    const worker = createWorker<SessionWebhookJob>(
      sessionWebhookQueueName(target.appId),
      (job) => deliver(target.appId, job),
      { url: deps.redisUrl, prefix: deps.keyPrefix, concurrency: JOBS_IN_FLIGHT_PER_APP },
    );
    worker.on('error', (err) => log.error({ err, appId: target.appId }, 'webhook worker error'));
    worker.on('failed', (job, err) => {
      if (!job) return;
      const final = job.attemptsMade >= (job.opts.attempts ?? 1) || err instanceof UnrecoverableError;
      if (!final) return;
      const events = job.data.deliveries.length;
      metrics.deliveries.inc({ app: target.appId, outcome: 'dead_lettered' }, events);
      log.warn(
        { appId: target.appId, events, attempts: job.attemptsMade, reason: err.message },
        'webhooks dead-lettered',
      );
    });
    const connections = new Pool(url.origin, {
      connections: settings.concurrency,
      // Checks the address of every connection it opens against the denylist.
      connect: guardedConnector({ denylist, timeoutMs: settings.timeoutMs }),
      keepAliveTimeout: 30_000,
    });
    return { target, path, queue, worker, connections };
  }

  async function closeLane(lane: AppLane): Promise<void> {
    // The worker finishes the requests in flight first.
    await lane.worker?.close();
    await lane.queue.close();
    await lane.connections?.destroy();
  }

  /** `appId url` of stored targets whose URL is not a usable http(s) URL: logged once, skipped. */
  const unusable = new Set<string>();
  function usable(target: WebhookTarget): boolean {
    try {
      const { protocol } = new URL(target.webhookUrl);
      if (protocol === 'http:' || protocol === 'https:') return true;
    } catch {
      // Stored before the admin api checked it (e.g. http://jira:80800/hook): not a URL.
    }
    const key = `${target.appId} ${target.webhookUrl}`;
    if (!unusable.has(key)) {
      unusable.add(key);
      log.error(
        { appId: target.appId, webhookUrl: target.webhookUrl },
        'webhook URL is not a valid http(s) URL; not delivering to this app until it is registered again',
      );
    }
    return false;
  }

  async function refresh(): Promise<void> {
    // An app whose stored URL does not parse is left out (as if it had none), not the refresh.
    const targets = (await deps.targets()).filter(usable);
    if (stopped) return;
    const current = new Set(targets.map((t) => t.appId));
    for (const target of targets) {
      const lane = lanes.get(target.appId);
      if (lane && lane.target.webhookUrl === target.webhookUrl) lane.target = target;
      else {
        if (lane) await closeLane(lane);
        lanes.set(target.appId, openLane(target));
      }
    }
    for (const [appId, lane] of lanes) {
      if (current.has(appId)) continue;
      // Undelivered jobs stay queued; they resume if the app gets a URL again.
      await closeLane(lane);
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
      // A first read that fails (Postgres unreachable) is logged and retried on the next
      // interval, not fatal: the broadcaster starts, and isReady() is false until a read succeeds.
      await refreshNow();
      timer = setInterval(() => void refreshNow(), settings.refreshMs);
      timer.unref();
    },
    /** Queues the events for every app, one job per app; the same events again are not queued twice. */
    async enqueue(events: readonly SessionAnnouncement[]): Promise<void> {
      if (events.length === 0 || lanes.size === 0) return;
      const deliveries = events.map((event) => ({
        eventId: event.id,
        type: event.type,
        session: event.data.session,
        body: JSON.stringify(event),
      }));
      const jobId = sessionWebhookJobId(deliveries);
      await Promise.all(
        [...lanes.values()].map((lane) =>
          lane.queue.add(
            'deliver',
            { deliveries },
            {
              jobId,
              attempts: settings.attempts,
              backoff: { type: 'exponential', delay: settings.backoffMs, jitter: 0.2 },
              removeOnComplete: { age: 600, count: 1_000 },
              removeOnFail: { age: 14 * 86_400, count: 100_000 },
            },
          ),
        ),
      );
    },
    /** Reads the apps again now (tests; an admin change that must apply at once). */
    refresh: refreshNow,
    isReady: () => healthy && !stopped,
    async stop(): Promise<void> {
      stopped = true;
      if (timer) clearInterval(timer);
      await refreshing;
      const all = [...lanes.values()];
      await Promise.all(all.map(closeLane));
      lanes.clear();
    },
  };
}
export type WebhookDispatcher = ReturnType<typeof createWebhookDispatcher>;
