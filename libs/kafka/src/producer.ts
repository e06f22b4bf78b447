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

/**
 * An idempotent producer (acks=all, broker-side de-duplication of retries), so a retried
 * send never writes an event twice.
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

  return {
    topics: options.topics,
    async publish(role, events) {
      if (events.length === 0) return;
      await producer.send({
        topic: options.topics[role],
        acks: -1,
        compression: CompressionTypes.None,
        messages: toMessages(role, events),
      });
    },
    async publishMany(batches) {
      const topicMessages = batches
        .filter((b) => b.events.length > 0)
        .map((b) => ({ topic: options.topics[b.role], messages: toMessages(b.role, b.events) }));
      if (topicMessages.length === 0) return;
      await producer.sendBatch({ acks: -1, topicMessages });
    },
    async sendRaw(topic, messages) {
      if (messages.length === 0) return;
      await producer.send({ topic, acks: -1, messages: messages.map((m) => ({ ...m })) });
    },
    connect: () => producer.connect(),
    disconnect: () => producer.disconnect(),
    isConnected: () => connected,
  };
}
