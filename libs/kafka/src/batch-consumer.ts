import type { Consumer, EachBatchPayload, Kafka, KafkaMessage } from 'kafkajs';
import { DLQ_HEADERS, parseEvent, type AnyTwofoldEvent, type TopicRole } from '@twofold/contracts';
import {
  contextFromHeaders,
  inConsumerSpan,
  type Context,
  type Logger,
  type ServiceMetrics,
} from '@twofold/telemetry';
import { partitionLags } from './admin.js';
import type { EventProducer } from './producer.js';

/** A consumed message whose event passed validation. */
export interface ConsumedEvent {
  readonly event: AnyTwofoldEvent;
  readonly role: TopicRole;
  readonly topic: string;
  readonly partition: number;
  readonly offset: string;
  /** Broker timestamp of the message (ms since epoch). */
  readonly timestamp: number;
  readonly key: string | null;
  /** Trace context the producer carried in the headers. */
  readonly traceContext: Context;
}

/** A consumed message that is not a valid event of its topic (sent to the DLQ by the runner). */
export interface RawConsumed {
  readonly topic: string;
  readonly partition: number;
  readonly offset: string;
  readonly message: KafkaMessage;
}

export interface BatchOutcome {
  /** Valid events the handler refuses for good (a business rule); they go to the DLQ with the reason. */
  rejected?: readonly { item: ConsumedEvent; reason: string }[];
}

export type BatchHandler = (events: readonly ConsumedEvent[]) => Promise<BatchOutcome | void>;

export interface BatchConsumerOptions {
  kafka: Kafka;
  groupId: string;
  /** Topic roles to consume, resolved through the producer's topic catalog. */
  roles: readonly TopicRole[];
  producer: EventProducer;
  logger: Logger;
  metrics: ServiceMetrics;
  handle: BatchHandler;
  /** Receives the raw messages of the DLQ topic when `roles` includes it (they are not events). */
  handleDlq?: (items: readonly RawConsumed[]) => Promise<void>;
  partitionsConsumedConcurrently?: number;
  fromBeginning?: boolean;
  /** How soon a dead member's partitions move to another replica (kafkajs heartbeats between batches). */
  sessionTimeoutMs?: number;
  /** How often resolved offsets are committed in the background. */
  commitIntervalMs?: number;
  /** Upper bound of the wait between retries of a failing handler. */
  maxRetryDelayMs?: number;
  /** How often the lag gauge is refreshed from the group's committed offsets (default 15 s). */
  lagIntervalMs?: number;
}

export interface BatchConsumer {
  start(): Promise<void>;
  /** Finishes the batch in flight (effect and commit), then leaves the group. */
  stop(): Promise<void>;
  isReady(): boolean;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Runs a consumer group in batches with at-least-once delivery and exactly-once effect:
 * the handler's effect happens first (it must be idempotent by event id), bad messages go
 * to the DLQ with the reason and their coordinates, and only then is the batch's offset
 * resolved for commit.
 * A failing handler is retried with backoff, never skipped, so nothing is lost.
 */
export function createBatchConsumer(options: BatchConsumerOptions): BatchConsumer {
  const { kafka, groupId, producer, logger, metrics, handle } = options;
  const topics = producer.topics;
  const roleByTopic = new Map<string, TopicRole>(options.roles.map((role) => [topics[role], role]));
  const subscribed = options.roles.map((role) => topics[role]);
  const maxRetryDelayMs = options.maxRetryDelayMs ?? 5_000;
  const log = logger.child({ component: 'batch-consumer', groupId });

  const consumer: Consumer = kafka.consumer({
    groupId,
    sessionTimeout: options.sessionTimeoutMs ?? 15_000,
    heartbeatInterval: 3_000,
    // The broker answers a fetch as soon as one message arrives; this only bounds idle polling.
    maxWaitTimeInMs: 500,
    allowAutoTopicCreation: false,
    retry: { retries: 10, initialRetryTime: 200, maxRetryTime: 10_000 },
  });
  let joined = false;
  let crashed = false;
  let stopping = false;
  const crashedGauge = { group: groupId };
  metrics.consumerCrashed.set(crashedGauge, 0);
  consumer.on(consumer.events.GROUP_JOIN, (event) => {
    joined = true;
    crashed = false;
    metrics.consumerCrashed.set(crashedGauge, 0);
    // Offsets of partitions given to another member are theirs to commit now.
    const assigned = event.payload.memberAssignment;
    for (const [key, e] of pending) if (!assigned[e.topic]?.includes(e.partition)) pending.delete(key);
  });
  // A rebalance: commit what is done while the partitions are still ours (fewer redeliveries).
  consumer.on(consumer.events.REBALANCING, () => void commitPending());
  consumer.on(consumer.events.CRASH, (event) => {
    crashed = true;
    if (event.payload.restart) {
      log.error({ err: event.payload.error, restart: true }, 'consumer crashed; kafkajs restarts it');
      return;
    }
    // A non-retriable error: kafkajs left the group for good and nothing here rejoins it.
    // The gauge fails liveness (consumerLiveness), so the container is restarted.
    metrics.consumerCrashed.set(crashedGauge, 1);
    log.fatal(
      { err: event.payload.error, restart: false },
      'consumer crashed and will not restart; liveness fails until the process is restarted',
    );
  });

  async function sendToDlq(items: readonly (RawConsumed & { reason: string })[]): Promise<void> {
    if (items.length === 0) return;
    await producer.sendRaw(
      topics.dlq,
      items.map(({ message, topic, partition, offset, reason }) => {
        const headers: Record<string, string | Buffer> = {};
        for (const [name, value] of Object.entries(message.headers ?? {})) {
          const first = Array.isArray(value) ? value[0] : value;
          if (first !== undefined) headers[name] = first;
        }
        headers[DLQ_HEADERS.error] = reason;
        headers[DLQ_HEADERS.topic] = topic;
        headers[DLQ_HEADERS.partition] = String(partition);
        headers[DLQ_HEADERS.offset] = offset;
        headers[DLQ_HEADERS.consumer] = groupId;
        return { key: message.key, value: message.value, headers };
      }),
    );
    for (const item of items) {
      metrics.dlqMessages.inc({ topic: item.topic });
      log.warn(
        { topic: item.topic, partition: item.partition, offset: item.offset, reason: item.reason },
        'sent to DLQ',
      );
    }
  }

  /**
   * Runs the effect until it succeeds (true); gives up only when the partition is no longer
   * ours (throws) or the consumer is stopping (false: the batch stays uncommitted).
   */
  async function retrying(
    effect: () => Promise<void>,
    topic: string,
    partition: number,
    heartbeat: () => Promise<void>,
    isRunning: () => boolean,
    isStale: () => boolean,
  ): Promise<boolean> {
    for (let attempt = 0; ; attempt++) {
      try {
        await effect();
        return true;
      } catch (err) {
        if (stopping) return false;
        if (!isRunning() || isStale()) throw err; // rebalanced: leave the batch uncommitted
        const delay = Math.min(maxRetryDelayMs, 100 * 2 ** Math.min(attempt, 10));
        log.error({ err, attempt, delay, topic, partition }, 'batch failed; retrying');
        await sleep(delay);
        await heartbeat().catch(() => undefined);
      }
    }
  }

  /**
   * Offsets of batches whose effect happened, committed together every commitIntervalMs,
   * off the batch path. (kafkajs 2.2.4 with autoCommit commits after *every* batch, whatever
   * its autoCommitInterval: one OffsetCommit per partition's batch, which the broker answers
   * one at a time per connection. With 12 partitions a fetch cycle waited ~60 ms of commits,
   * most of a login decision's latency at 300 logins/s.) A crash before the commit only
   * means a redelivery, which every effect absorbs (idempotent by event id).
   */
  const pending = new Map<string, { topic: string; partition: number; offset: string }>();
  let committing: Promise<void> | undefined;
  let commitTimer: NodeJS.Timeout | undefined;

  /** Commits the offsets kept so far, in one request (or joins the commit in flight). */
  function commitPending(): Promise<void> {
    if (committing) return committing;
    if (pending.size === 0) return Promise.resolve();
    const entries = [...pending.values()];
    pending.clear();
    committing = consumer
      .commitOffsets(entries)
      .catch((err: unknown) => {
        // A rebalance or a coordinator move: the batches are delivered again (idempotent).
        log.warn(
          { err, partitions: entries.length },
          'offset commit failed; those batches may be redelivered',
        );
      })
      .finally(() => (committing = undefined));
    return committing;
  }

  /** Marks the batch done once its effect happened: fetching goes on after it, the commit follows. */
  async function markDone(
    batch: EachBatchPayload['batch'],
    resolveOffset: (offset: string) => void,
    heartbeat: () => Promise<void>,
  ) {
    const { topic, partition } = batch;
    const last = batch.lastOffset();
    resolveOffset(last); // where kafkajs fetches this partition from next
    pending.set(`${topic}|${partition}`, { topic, partition, offset: (BigInt(last) + 1n).toString() });
    await heartbeat();
  }

  /**
   * The lag gauge from the group's committed offsets vs the partition ends, on a timer: set
   * at each batch only, it froze at its last value (often ~0) while a batch was retried for
   * good (Postgres down), and a stalled group never raised the lag alert. Every partition of
   * the subscribed topics, as every replica sees the same committed offsets (alerts take the
   * max), including those of a member that stopped fetching.
   */
  const admin = kafka.admin();
  let adminConnected: Promise<void> | undefined;
  let measuring = false;
  let lagTimer: NodeJS.Timeout | undefined;

  async function refreshLag(): Promise<void> {
    if (measuring || stopping) return;
    measuring = true;
    try {
      adminConnected ??= admin.connect().catch((err: unknown) => {
        adminConnected = undefined;
        throw err;
      });
      await adminConnected;
      for (const { topic, partition, lag } of await partitionLags(admin, groupId, subscribed)) {
        metrics.consumerLag.set({ topic, partition: String(partition), group: groupId }, lag);
      }
    } catch (err) {
      if (!stopping) log.warn({ err }, 'measuring the consumer lag failed; the gauge keeps its last values');
    } finally {
      measuring = false;
    }
  }

  /** Batches being handled; stop() commits once they are done, before leaving the group. */
  let inFlight = 0;
  let onIdle: (() => void) | undefined;

  async function processBatch(payload: EachBatchPayload) {
    // Stopping: batches fetched from now on are left for the next owner (not resolved).
    if (stopping || payload.batch.messages.length === 0) return;
    inFlight++;
    try {
      await handleBatch(payload);
    } finally {
      if (--inFlight === 0) onIdle?.();
    }
  }

  async function handleBatch({ batch, resolveOffset, heartbeat, isRunning, isStale }: EachBatchPayload) {
    const started = process.hrtime.bigint();
    const role = roleByTopic.get(batch.topic);
    if (role === 'dlq') {
      const raw = batch.messages.map((message) => ({
        topic: batch.topic,
        partition: batch.partition,
        offset: message.offset,
        message,
      }));
      const done = await retrying(
        () => options.handleDlq?.(raw) ?? Promise.resolve(),
        batch.topic,
        batch.partition,
        heartbeat,
        isRunning,
        isStale,
      );
      if (!done) return;
      await markDone(batch, resolveOffset, heartbeat);
      metrics.kafkaMessages.inc({ topic: batch.topic, outcome: 'ok' }, raw.length);
      return;
    }
    const valid: ConsumedEvent[] = [];
    const invalid: (RawConsumed & { reason: string })[] = [];
    for (const message of batch.messages) {
      const coordinates = { topic: batch.topic, partition: batch.partition, offset: message.offset };
      const parsed = role ? parseEvent(message.value, role) : { ok: false as const, reason: 'unknown topic' };
      if (parsed.ok) {
        valid.push({
          ...coordinates,
          event: parsed.event,
          role: role!,
          timestamp: Number(message.timestamp),
          key: message.key?.toString() ?? null,
          traceContext: contextFromHeaders(message.headers),
        });
      } else {
        invalid.push({ ...coordinates, message, reason: parsed.reason });
      }
    }

    const done = await retrying(
      async () => {
        const outcome =
          valid.length > 0
            ? await inConsumerSpan(
                `process ${batch.topic}`,
                valid.map((v) => v.traceContext),
                {
                  'messaging.system': 'kafka',
                  'messaging.destination.name': batch.topic,
                  'messaging.batch.message_count': valid.length,
                },
                () => handle(valid),
              )
            : undefined;
        const rejected = (outcome?.rejected ?? []).map(({ item, reason }) => ({
          topic: item.topic,
          partition: item.partition,
          offset: item.offset,
          reason,
          message: batch.messages.find((m) => m.offset === item.offset)!,
        }));
        const toDlq = [...invalid, ...rejected];
        await sendToDlq(toDlq);
      },
      batch.topic,
      batch.partition,
      heartbeat,
      isRunning,
      isStale,
    );
    if (!done) return;
    await markDone(batch, resolveOffset, heartbeat);

    metrics.kafkaMessages.inc({ topic: batch.topic, outcome: 'ok' }, valid.length);
    if (invalid.length) metrics.kafkaMessages.inc({ topic: batch.topic, outcome: 'dlq' }, invalid.length);
    metrics.consumerLag.set(
      { topic: batch.topic, partition: String(batch.partition), group: groupId },
      Number(batch.offsetLag()),
    );
    metrics.batchDuration.observe({ group: groupId }, Number(process.hrtime.bigint() - started) / 1e9);
  }

  return {
    async start() {
      await consumer.connect();
      await consumer.subscribe({
        topics: subscribed,
        fromBeginning: options.fromBeginning ?? true,
      });
      await consumer.run({
        autoCommit: false, // committed by commitPending (see there why)
        eachBatchAutoResolve: false,
        partitionsConsumedConcurrently: options.partitionsConsumedConcurrently ?? 1,
        eachBatch: processBatch,
      });
      commitTimer = setInterval(() => void commitPending(), options.commitIntervalMs ?? 250);
      commitTimer.unref();
      lagTimer = setInterval(() => void refreshLag(), options.lagIntervalMs ?? 15_000);
      lagTimer.unref();
    },
    async stop() {
      if (stopping) return;
      stopping = true;
      clearInterval(commitTimer);
      clearInterval(lagTimer);
      // Let the batches in flight finish, then commit everything done while the group is ours.
      if (inFlight > 0) await new Promise<void>((resolve) => (onIdle = resolve));
      while (committing || pending.size > 0) await commitPending();
      await consumer.disconnect();
      if (adminConnected) await admin.disconnect().catch(() => undefined);
    },
    isReady: () => joined && !crashed && !stopping,
  };
}
