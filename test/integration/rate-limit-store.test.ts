// The api's rate-limit counters live in Redis, shared by every replica. Small limits (a
// challenge's codes) are counted one request at a time; large per-app limits are claimed in
// blocks, so a busy app costs one Redis round trip per block instead of one per request,
// and replicas together still admit no more than the limit.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyRateLimitStore } from '@fastify/rate-limit';
import { createRedis, waitForRedis, type Redis } from '@twofold/redis';
import { claimSize, leasedRedisStore } from '../../services/api/src/plugins/rate-limit.store.js';
import { stackEnv } from '../support/stack.js';

const prefix = `t:rate-${randomUUID().slice(0, 8)}:`;
let redis: Redis;

const replica = (client: Redis = redis): FastifyRateLimitStore => {
  const Store = leasedRedisStore(client, prefix);
  return new Store({});
};

const count = (store: FastifyRateLimitStore, key: string, max: number, timeWindow = 60_000) =>
  new Promise<{ current: number; ttl: number }>((resolve, reject) =>
    store.incr(key, (err, result) => (err ? reject(err) : resolve(result!)), timeWindow, max),
  );

beforeAll(async () => {
  redis = createRedis(stackEnv()['REDIS_URL']!, 'state');
  await waitForRedis(redis);
});

afterAll(async () => {
  const keys = await redis.keys(`${prefix}*`);
  if (keys.length > 0) await redis.unlink(...keys);
  redis.disconnect();
});

describe('rate-limit store', () => {
  it('claims blocks of at most 1 % of a limit, one request at a time for small limits', () => {
    expect(claimSize(10)).toBe(1);
    expect(claimSize(199)).toBe(1);
    expect(claimSize(500)).toBe(5);
    expect(claimSize(60_000)).toBe(100);
    expect(claimSize(300_000)).toBe(100);
  });

  it('counts a small limit exactly, in Redis, across replicas', async () => {
    const [a, b] = [replica(), replica()];
    const results = [];
    for (let i = 0; i < 12; i++) results.push(await count(i % 2 ? a : b, 'challenge-1', 10));
    expect(results.map((r) => r.current)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    expect(Number(await redis.get(`${prefix}challenge-1`))).toBe(12);
    expect(results.every((r) => r.ttl > 0 && r.ttl <= 60_000)).toBe(true);
  });

  it('two replicas sharing a large limit admit no more than it, and go to Redis once per block', async () => {
    const [a, b] = [replica(), replica()];
    const max = 10_000;
    // Concurrent requests on both replicas, as a busy app sends them.
    const results = await Promise.all(
      Array.from({ length: 12_000 }, (_, i) => count(i % 2 ? a : b, 'app-1', max)),
    );
    const admitted = results.filter((r) => r.current <= max).length;
    expect(admitted).toBeLessThanOrEqual(max);
    // Early refusals are bounded by the replicas' unused claims (one block each).
    expect(admitted).toBeGreaterThanOrEqual(max - 2 * claimSize(max));
    // Every request is counted, in whole blocks: 120 claims, not 12,000 round trips.
    const counted = Number(await redis.get(`${prefix}app-1`));
    expect(counted % claimSize(max)).toBe(0);
    expect(counted).toBeGreaterThanOrEqual(12_000);
    expect(counted).toBeLessThanOrEqual(12_000 + 2 * claimSize(max));
  });

  it('starts counting again when the window ends', async () => {
    const store = replica();
    for (let i = 0; i < 300; i++) await count(store, 'app-2', 1_000, 300);
    expect((await count(store, 'app-2', 1_000, 300)).current).toBe(301);
    await new Promise((resolve) => setTimeout(resolve, 350));
    expect((await count(store, 'app-2', 1_000, 300)).current).toBe(1);
  });

  it('reports Redis failing as an error (the plugin then lets the request pass)', async () => {
    const down = createRedis('redis://127.0.0.1:1', 'state', { retryStrategy: () => null });
    try {
      await expect(count(replica(down), 'app-3', 300_000)).rejects.toThrow();
    } finally {
      down.disconnect();
    }
  });
});
