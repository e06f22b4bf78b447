// The producer under concurrency: many callers at once all land, in order per key, and
// keep their order per key through the natural batching behind the one in-flight request.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEvent } from '@twofold/contracts';
import { eventually, isolated, type Isolated } from '../support/stack.js';
import { readTopic } from '../support/topic-reader.js';

let world: Isolated;
beforeAll(async () => {
  world = await isolated('producer');
});
afterAll(async () => world.cleanup());

describe('event producer', () => {
  it('publishes 2,000 concurrent single-event sends, each user in order', async () => {
    const reader = await readTopic(world.kafka, world.topics.login);
    const users = Array.from({ length: 20 }, (_, i) => `order-user-${i}`);
    const events = Array.from({ length: 2_000 }, (_, i) =>
      createEvent('twofold.login.failed', 'app/jira', users[i % users.length]!, {
        appId: 'jira',
        ip: '192.0.2.1',
        reason: 'bad_password',
        seq: i,
      } as never),
    );
    await Promise.all(events.map((e) => world.producer.publish('login', [e])));
    const seen = await eventually(
      async () =>
        reader.messages.length >= events.length
          ? reader.json<{ subject: string; data: { seq: number } }>()
          : undefined,
      30_000,
      'all events',
    );
    expect(seen).toHaveLength(events.length);
    for (const user of users) {
      const seqs = seen.filter((e) => e.subject === user).map((e) => e.data.seq);
      expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    }
    await reader.stop();
  });
});
