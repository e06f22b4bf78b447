// A client resuming near the oldest kept entry: the broadcaster may append and trim between
// the feed's look at the trim position and its catch-up read. The entries trimmed meanwhile
// are lost to the client, so it must be told `gap` (and re-check its sessions).
import { randomUUID } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { createRedis, waitForRedis, type Redis } from '@twofold/redis';
import {
  appendSessionEvents,
  createSessionEventFeed,
  trimSessionEvents,
  type SessionStreamEntry,
} from '@twofold/state';
import { stackEnv } from '../support/stack.js';

const prefix = `t:session-feed-gap-${randomUUID().slice(0, 8)}:`;
const clients: Redis[] = [];

afterAll(async () => {
  const redis = createRedis(stackEnv()['REDIS_URL']!, 'state');
  await waitForRedis(redis);
  const keys = await redis.keys(`${prefix}*`);
  if (keys.length > 0) await redis.unlink(...keys);
  await redis.quit();
  for (const client of clients) client.disconnect();
});

/** The client, except that before its first XRANGE `beforeRead` runs (the broadcaster at work). */
function withWorkBeforeFirstRange(redis: Redis, beforeRead: () => Promise<void>): Redis {
  let pending: (() => Promise<void>) | undefined = beforeRead;
  return new Proxy(redis, {
    get(target, prop) {
      if (prop === 'xrange') {
        return async (...args: unknown[]) => {
          const work = pending;
          pending = undefined;
          if (work) await work();
          return (target.xrange as (...a: unknown[]) => Promise<unknown>)(...args);
        };
      }
      const value = Reflect.get(target, prop, target) as unknown;
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}

describe('session event feed resume', () => {
  it('reports a gap when entries after Last-Event-ID are trimmed between the check and the catch-up', async () => {
    const url = stackEnv()['REDIS_URL']!;
    const redis = createRedis(url, 'state');
    const reader = createRedis(url, 'queue');
    clients.push(redis, reader);
    await waitForRedis(redis);

    const ids = await appendSessionEvents(
      redis,
      prefix,
      [1, 2, 3, 4, 5].map((n) => ({ type: 'twofold.session.validated', json: `{"n":${n}}` })),
      5,
    );
    // The client saw the first entry; the second and third are trimmed while it resumes.
    const racing = withWorkBeforeFirstRange(redis, async () => {
      await appendSessionEvents(redis, prefix, [{ type: 'twofold.session.revoked', json: '{"n":6}' }], 10);
      expect(await trimSessionEvents(redis, prefix, 3)).toBe(3);
    });
    const feed = createSessionEventFeed({ reader, redis: racing, prefix, blockMs: 200 });
    await feed.start();
    try {
      const seen: SessionStreamEntry[] = [];
      let gaps = 0;
      const sub = await feed.subscribe(
        ids[0],
        (entries) => seen.push(...entries),
        () => gaps++,
      );
      sub.unsubscribe();
      // The catch-up starts at the fourth entry: the second and third were missed.
      expect(seen.map((e) => e.json)).toEqual(['{"n":4}', '{"n":5}', '{"n":6}']);
      expect(sub.gap).toBe(true);
      expect(gaps).toBe(1);
    } finally {
      await feed.stop();
    }
  });
});
