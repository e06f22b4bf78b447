// The api's readiness check for Kafka: one connection kept between probes, an answer within
// its timeout when the broker is unreachable, and overlapping probes sharing one request.
import { createServer, type Server } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKafka, createKafkaPing, type Kafka } from '@twofold/kafka';
import { createLogger } from '@twofold/telemetry';
import { isolated, type Isolated } from '../support/stack.js';

let world: Isolated;
beforeAll(async () => {
  world = await isolated('kafka-ping');
});
afterAll(async () => world.cleanup());

/** The Kafka client, counting the admin clients made from it. */
function counting(kafka: Kafka) {
  const made = { admins: 0 };
  const wrapped = Object.create(kafka) as Kafka;
  wrapped.admin = (...args: Parameters<Kafka['admin']>) => {
    made.admins++;
    return kafka.admin(...args);
  };
  return { kafka: wrapped, made };
}

describe('createKafkaPing', () => {
  it('answers ready on one admin connection kept between checks', async () => {
    const { kafka, made } = counting(world.kafka);
    const ping = createKafkaPing(kafka);
    try {
      for (let i = 0; i < 5; i++) expect(await ping.ping()).toBe(true);
      expect(made.admins).toBe(1);
    } finally {
      await ping.close();
    }
  });

  it('answers not ready within its timeout from a broker that never answers, and shares overlapping checks', async () => {
    // A port that accepts connections and never answers a Kafka request.
    const silent: Server = createServer(() => undefined);
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const port = (silent.address() as { port: number }).port;
    const logger = createLogger({ service: 'kafka-ping-test', level: 'silent' });
    const { kafka, made } = counting(
      createKafka({ brokers: [`127.0.0.1:${port}`], clientId: 'ping', logger }),
    );
    const ping = createKafkaPing(kafka, { timeoutMs: 300 });
    try {
      const started = Date.now();
      const answers = await Promise.all([ping.ping(), ping.ping(), ping.ping()]);
      expect(answers).toEqual([false, false, false]);
      expect(Date.now() - started).toBeLessThan(2_000);
      expect(made.admins).toBe(1);
      // Closing does not wait for the check stuck on the silent broker (shutdown has a deadline).
      const closing = Date.now();
      await ping.close();
      expect(Date.now() - closing).toBeLessThan(1_500);
    } finally {
      await ping.close();
      silent.close();
    }
  });
});
