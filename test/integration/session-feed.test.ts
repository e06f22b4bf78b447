// The api's session event feed starts whatever state Redis is in: a state client refuses
// commands until it is connected (no offline queue), so the feed must not read through it
// at start (the api crashed at start-up with "Stream isn't writeable").
import { randomUUID } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { createRedis, waitForRedis, type Redis } from '@twofold/redis';
import { appendSessionEvents, createSessionEventFeed, type SessionStreamEntry } from '@twofold/state';
import { eventually, stackEnv } from '../support/stack.js';

const prefix = `t:session-feed-${randomUUID().slice(0, 8)}:`;
const clients: Redis[] = [];

afterAll(async () => {
  const redis = createRedis(stackEnv()['REDIS_URL']!, 'state');
  await waitForRedis(redis);
  const keys = await redis.keys(`${prefix}*`);
  if (keys.length > 0) await redis.unlink(...keys);
  await redis.quit();
  for (const client of clients) client.disconnect();
});

describe('session event feed', () => {
  it('starts on a state client that is not connected yet, then delivers what is appended', async () => {
    const url = stackEnv()['REDIS_URL']!;
    const redis = createRedis(url, 'state');
    const reader = createRedis(url, 'queue');
    clients.push(redis, reader);
    expect(redis.status).not.toBe('ready');
    const feed = createSessionEventFeed({ reader, redis, prefix, blockMs: 200 });
    await feed.start();
    const seen: SessionStreamEntry[] = [];
    await feed.subscribe(undefined, (entries) => seen.push(...entries));
    await waitForRedis(redis);
    // Appended until one arrives: the feed follows from where the stream ended when it first read it.
    const delivered = await eventually(
      async () => {
        const [id] = await appendSessionEvents(redis, prefix, [
          { type: 'twofold.session.validated', json: '{}' },
        ]);
        await new Promise((resolve) => setTimeout(resolve, 300));
        return seen.find((e) => e.id === id);
      },
      10_000,
      'an appended entry delivered',
    );
    expect(delivered).toMatchObject({ type: 'twofold.session.validated', json: '{}' });
    await feed.stop();
    expect(feed.isRunning()).toBe(false);
  });
});
