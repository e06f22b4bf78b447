import { createBatchConsumer, type ConsumedEvent, type EventProducer, type Kafka } from '@twofold/kafka';
import { pingRedis, type Redis } from '@twofold/redis';
import {
  appendSessionEvents,
  applySessionChanges,
  DEFAULT_SESSION_STREAM_MAXLEN,
  type SessionChange,
} from '@twofold/state';
import { Counter, type Logger, type ServiceMetrics } from '@twofold/telemetry';
import { announcementsOf, sessionChangeOf, type SessionAnnouncement } from './session-change.js';
import type { WebhookDispatcher } from './webhook-dispatcher.js';

export interface SessionBroadcasterDeps {
  kafka: Kafka;
  producer: EventProducer;
  /** State client (session keys, user index, the SSE stream). */
  redis: Redis;
  logger: Logger;
  metrics: ServiceMetrics;
  groupId: string;
  keyPrefix: string;
  /** The session lifetime now in force (the admin policy's, else the env's: createSessionLifetime). */
  sessionTtlSeconds: () => number;
  /** Entries kept in the SSE replay stream. */
  streamMaxLen?: number;
  /** Webhook delivery; without it, apps hear sessions by Kafka and SSE only. */
  webhooks?: WebhookDispatcher;
  partitionsConsumedConcurrently?: number;
}

/**
 * The session broadcaster: consumes `2fa.verified` (→ verified), `logout` (→ revoked),
 * user-scope `lockout.imposed` and session-ending admin actions (→ every session of the
 * user revoked); keeps session state in Redis; announces `session.validated` /
 * `session.revoked` on the session topic, to the SSE stream and to every app's webhook.
 * State and announcements happen before the offsets are committed; a redelivered event
 * re-announces the same event ids, which every channel de-duplicates or apps ignore.
 * Event times are believed up to five minutes ahead of this host's clock: a verification
 * stamped later is ignored (and logged), a revoke counts now (`applySessionChanges`).
 */
export function buildSessionBroadcaster(deps: SessionBroadcasterDeps) {
  const log = deps.logger.child({ component: 'session-broadcaster' });
  const streamMaxLen = deps.streamMaxLen ?? DEFAULT_SESSION_STREAM_MAXLEN;
  const changesCounter =
    (deps.metrics.registry.getSingleMetric('twofold_session_changes_total') as
      Counter<'kind' | 'outcome'> | undefined) ??
    new Counter({
      name: 'twofold_session_changes_total',
      help: 'Session changes applied, by kind (validate, revoke, revoke-user) and outcome',
      labelNames: ['kind', 'outcome'],
      registers: [deps.metrics.registry],
    });

  async function announce(events: readonly SessionAnnouncement[]): Promise<void> {
    if (events.length === 0) return;
    await Promise.all([
      deps.producer.publish('session', events),
      appendSessionEvents(
        deps.redis,
        deps.keyPrefix,
        events.map((e) => ({ type: e.type, json: JSON.stringify(e) })),
        streamMaxLen,
      ),
      deps.webhooks?.enqueue(events),
    ]);
  }

  async function apply(batch: readonly ConsumedEvent[]): Promise<void> {
    const changes: SessionChange[] = [];
    for (const item of batch) {
      const change = sessionChangeOf(item.event);
      if (change) changes.push(change);
    }
    if (changes.length === 0) return;
    const outcomes = await applySessionChanges(deps.redis, deps.keyPrefix, changes, {
      ttlSeconds: deps.sessionTtlSeconds(),
    });
    for (const o of outcomes) changesCounter.inc({ kind: o.change.kind, outcome: o.outcome });
    const future = outcomes.filter((o) => o.outcome === 'future').map((o) => o.change.eventId);
    if (future.length > 0)
      log.warn(
        { eventIds: future },
        'verifications stamped later than this clock allows were ignored: check the clocks of the verifier and this host',
      );
    const events = announcementsOf(outcomes);
    await announce(events);
    if (events.length > 0)
      log.debug({ changes: changes.length, announced: events.length }, 'sessions announced');
  }

  /**
   * One fetch hands every partition's batch to a worker at once; they are applied together:
   * one pair of Redis round trips, one produce request, one stream append and one webhook
   * job per app for all of them, instead of that much per partition. The profile under
   * load showed per-batch round trips, not per-event work, as the consumer's cost. A
   * failure fails every batch of the group; each is retried (every effect is idempotent).
   */
  let waiting: { batch: readonly ConsumedEvent[]; done: (err?: unknown) => void }[] = [];
  const handle = (batch: readonly ConsumedEvent[]) =>
    new Promise<void>((resolve, reject) => {
      if (waiting.length === 0) setImmediate(applyWaiting);
      waiting.push({ batch, done: (err) => (err === undefined ? resolve() : reject(err)) });
    });
  function applyWaiting(): void {
    const group = waiting;
    waiting = [];
    apply(group.length === 1 ? group[0]!.batch : group.flatMap((g) => g.batch)).then(
      () => group.forEach((g) => g.done()),
      (err: unknown) => group.forEach((g) => g.done(err ?? new Error('session batch failed'))),
    );
  }

  const consumer = createBatchConsumer({
    kafka: deps.kafka,
    groupId: deps.groupId,
    roles: ['login', 'secondFactor', 'security', 'admin'],
    producer: deps.producer,
    logger: deps.logger,
    metrics: deps.metrics,
    // Every partition's batch of a fetch at once, so they are applied as one group (handle).
    partitionsConsumedConcurrently: deps.partitionsConsumedConcurrently ?? 16,
    handle,
  });

  return {
    async start() {
      await deps.webhooks?.start();
      await consumer.start();
    },
    async stop() {
      await consumer.stop();
      await deps.webhooks?.stop();
    },
    async readiness() {
      return {
        kafka: consumer.isReady() && deps.producer.isConnected(),
        redis: await pingRedis(deps.redis),
        ...(deps.webhooks ? { webhooks: deps.webhooks.isReady() } : {}),
      };
    },
  };
}
