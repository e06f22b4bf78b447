import { CompressionTypes, Partitioners, type Kafka, type Message, type Producer } from 'kafkajs';
import type { AnyTwofoldEvent, TopicCatalog, TopicRole, TwofoldEvent } from '@twofold/contracts';
import { traceHeaders, type Logger } from '@twofold/telemetry';

/** Kafka message key of an event: the session on the session topic, else the subject. */
export function messageKey(role: TopicRole, event: TwofoldEvent | AnyTwofoldEvent): string {
  if (role === 'session') {
    const session = (event.data as { session?: unknown }).session;
    if (typeof session === 'string') return session;
  }
  return event.subject;
}

export interface RawMessage {
  key: Buffer | string | null;
  value: Buffer | string | null;
  headers?: Record<string, string | Buffer>;
}

export interface EventProducer {
  /** Publishes events to one topic, keyed per CONTRACT.md, with the trace context in headers. */
  publish(role: TopicRole, events: readonly (TwofoldEvent | AnyTwofoldEvent)[]): Promise<void>;
  /** Publishes to several topics in one request. */
  publishMany(
    batches: readonly { role: TopicRole; events: readonly (TwofoldEvent | AnyTwofoldEvent)[] }[],
  ): Promise<void>;
  /** Sends raw messages (the DLQ keeps the original bytes). */
  sendRaw(topic: string, messages: readonly RawMessage[]): Promise<void>;
  readonly topics: TopicCatalog;
  connect(): Promise<void>;
  disconnect(): Promise<void>;
  isConnected(): boolean;
}

/** Most messages merged into one produce request. */
const MAX_MESSAGES_PER_REQUEST = 2_000;

interface QueuedSend {
  topicMessages: { topic: string; messages: Message[] }[];
  count: number;
  resolve: () => void;
  reject: (err: unknown) => void;
}

/**
 * An idempotent producer (acks=all, broker-side de-duplication of retries), so a retried
 * send never writes an event twice.
 *
 * Idempotence allows one request in flight per broker, so concurrent callers would wait
 * in line one round trip each. Instead sends are batched naturally: while a request is in
 * flight, new sends queue, and the next request carries all of them (no added latency
 * when idle, throughput bounded by the broker rather than the round trip). Each caller's
 * promise settles with its own request; order per key is kept (one FIFO, one in flight).
 */
export function createEventProducer(
  kafka: Kafka,
  options: { topics: TopicCatalog; logger: Logger },
): EventProducer {
  const producer: Producer = kafka.producer({
    idempotent: true,
    maxInFlightRequests: 1,
    allowAutoTopicCreation: false,
    // Murmur2 partitioning, as the Java client does: keys land where other clients put them.
    createPartitioner: Partitioners.DefaultPartitioner,
  });
  let connected = false;
  producer.on(producer.events.CONNECT, () => (connected = true));
  producer.on(producer.events.DISCONNECT, () => (connected = false));

  const toMessages = (role: TopicRole, events: readonly (TwofoldEvent | AnyTwofoldEvent)[]): Message[] => {
    const headers = { ...traceHeaders(), 'content-type': 'application/cloudevents+json' };
    return events.map((event) => ({ key: messageKey(role, event), value: JSON.stringify(event), headers }));
  };

  let queue: QueuedSend[] = [];
  let flushing = false;

  async function flush(): Promise<void> {
    if (flushing) return;
    flushing = true;
    try {
      while (queue.length > 0) {
        let taken = 0;
        let cut = 0;
        while (cut < queue.length && (cut === 0 || taken + queue[cut]!.count <= MAX_MESSAGES_PER_REQUEST)) {
          taken += queue[cut]!.count;
          cut++;
        }
        const sends = queue.slice(0, cut);
        queue = queue.slice(cut);
        const byTopic = new Map<string, Message[]>();
        for (const send of sends) {
          for (const { topic, messages } of send.topicMessages) {
            const list = byTopic.get(topic) ?? [];
            list.push(...messages);
            byTopic.set(topic, list);
          }
        }
        try {
          await producer.sendBatch({
            acks: -1,
            compression: CompressionTypes.None,
            topicMessages: [...byTopic].map(([topic, messages]) => ({ topic, messages })),
          });
          for (const send of sends) send.resolve();
        } catch (err) {
          for (const send of sends) send.reject(err);
        }
      }
    } finally {
      flushing = false;
    }
  }

  function enqueue(topicMessages: { topic: string; messages: Message[] }[]): Promise<void> {
    const count = topicMessages.reduce((n, t) => n + t.messages.length, 0);
    if (count === 0) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      queue.push({ topicMessages, count, resolve, reject });
      void flush();
    });
  }

  return {
    topics: options.topics,
    publish: (role, events) => enqueue([{ topic: options.topics[role], messages: toMessages(role, events) }]),
    publishMany: (batches) =>
      enqueue(
        batches.map((b) => ({ topic: options.topics[b.role], messages: toMessages(b.role, b.events) })),
      ),
    sendRaw: (topic, messages) => enqueue([{ topic, messages: messages.map((m) => ({ ...m })) }]),
    connect: () => producer.connect(),
    disconnect: () => producer.disconnect(),
    isConnected: () => connected,
  };
}
