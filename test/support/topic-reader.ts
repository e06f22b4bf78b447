// Reads everything that lands on a topic during a test, with a fresh consumer group.
import { randomUUID } from 'node:crypto';
import type { Kafka } from '@twofold/kafka';

export interface ReadMessage {
  key: string | null;
  value: Buffer | null;
  headers: Record<string, string>;
  partition: number;
  offset: string;
}

export async function readTopic(kafka: Kafka, topic: string) {
  const messages: ReadMessage[] = [];
  const consumer = kafka.consumer({ groupId: `test-reader-${randomUUID()}`, maxWaitTimeInMs: 100 });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({
    eachMessage: async ({ message, partition }) => {
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(message.headers ?? {})) {
        const first = Array.isArray(v) ? v[0] : v;
        if (first !== undefined) headers[k] = first.toString();
      }
      messages.push({
        key: message.key?.toString() ?? null,
        value: message.value,
        headers,
        partition,
        offset: message.offset,
      });
    },
  });
  return {
    messages,
    json: <T = Record<string, unknown>>() =>
      messages.flatMap((m) => {
        try {
          return [JSON.parse(m.value?.toString() ?? '') as T];
        } catch {
          return [];
        }
      }),
    stop: () => consumer.disconnect(),
  };
}
