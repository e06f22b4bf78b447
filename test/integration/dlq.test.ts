// A malformed message on twofold.login.v1 goes to twofold.dlq.v1 with the reason and its
// coordinates, and the consumer goes on with the next good message.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DLQ_HEADERS, createEvent, hashSessionToken } from '@twofold/contracts';
import { startServices, type RunningServices } from '../support/services.js';
import { eventually, isolated, type Isolated } from '../support/stack.js';
import { readTopic } from '../support/topic-reader.js';

let world: Isolated;
let services: RunningServices;

beforeAll(async () => {
  world = await isolated('dlq');
  services = await startServices(world, ['verifier']);
});

afterAll(async () => {
  await services.stop();
  await world.cleanup();
});

describe('dead-letter topic', () => {
  it('routes not-JSON, wrong-schema, oversized and NUL-subject messages to the DLQ, then decides the next good login', async () => {
    const dlq = await readTopic(world.kafka, world.topics.dlq);
    const decided = await readTopic(world.kafka, world.topics.secondFactor);
    const good = createEvent('twofold.login.succeeded', 'app/jira', 'alice', {
      appId: 'jira',
      session: hashSessionToken(randomUUID()),
      method: 'password',
      ip: '192.0.2.10',
    });
    const wrongSchema = { ...good, id: randomUUID(), data: { ...good.data, ip: 'not-an-ip' } };
    const oversized = { ...good, id: randomUUID(), data: { ...good.data, userAgent: 'x'.repeat(70_000) } };
    // Postgres text cannot hold NUL: read in the same batch as the good login, it failed the
    // verifier's enrollment query for every user of the batch (state_unavailable for all).
    const nulSubject = { ...good, id: randomUUID(), subject: 'ali\u0000ce' };
    // One partition key for all, so the good message queues behind the bad ones.
    await world.producer.sendRaw(world.topics.login, [
      { key: 'alice', value: '{"this is": not json' },
      { key: 'alice', value: JSON.stringify(wrongSchema) },
      { key: 'alice', value: JSON.stringify(oversized) },
      { key: 'alice', value: JSON.stringify(nulSubject) },
      { key: 'alice', value: JSON.stringify(good) },
    ]);

    const dead = await eventually(
      async () => (dlq.messages.length >= 4 ? dlq.messages : undefined),
      30_000,
      'four DLQ messages',
    );
    const reasons = dead.map((m) => m.headers[DLQ_HEADERS.error]);
    expect(reasons[0]).toMatch(/^not JSON/);
    expect(reasons[1]).toBe('data.ip must match format "ip"');
    expect(reasons[2]).toMatch(/bytes; the limit is 65536/);
    expect(reasons[3]).toBe('event.subject contains the control character U+0000');
    for (const m of dead) {
      expect(m.headers[DLQ_HEADERS.topic]).toBe(world.topics.login);
      expect(m.headers[DLQ_HEADERS.partition]).toMatch(/^\d+$/);
      expect(m.headers[DLQ_HEADERS.offset]).toMatch(/^\d+$/);
      expect(m.headers[DLQ_HEADERS.consumer]).toBe(`${world.config.kafka.groupPrefix}twofold-verifier`);
      expect(m.key).toBe('alice');
    }
    // The original bytes are kept.
    expect(dead[0]!.value?.toString()).toBe('{"this is": not json');

    const decision = await eventually(
      async () =>
        decided
          .json<{ type: string; data: { loginEventId: string; reason: string } }>()
          .find((e) => e.data.loginEventId === good.id),
      30_000,
      'the decision on the good login',
    );
    expect(decision.type).toBe('twofold.2fa.decided');
    expect(decision.data.reason).not.toBe('state_unavailable');
    await Promise.all([dlq.stop(), decided.stop()]);
  });
});
