// State clients may auto-pipeline (one socket write per tick instead of one per command).
// ioredis 5.11 crashes the process when a script is defined while an auto-pipeline is
// pending; createRedis and runScript keep that from happening. Without the fix, the first
// test ends the worker with "results[i] is not iterable".
import { createHash, randomUUID } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { createRedis, waitForRedis, type Redis } from '@twofold/redis';
import { runScript } from '@twofold/state';
import { stackEnv } from '../support/stack.js';

const prefix = `t:auto-pipelining-${randomUUID().slice(0, 8)}:`;
const clients: Redis[] = [];

async function client(): Promise<Redis> {
  const redis = createRedis(stackEnv()['REDIS_URL']!, 'state', { enableAutoPipelining: true });
  clients.push(redis);
  await waitForRedis(redis);
  return redis;
}

afterAll(async () => {
  const redis = clients[0]!;
  const keys = await redis.keys(`${prefix}*`);
  if (keys.length > 0) await redis.unlink(...keys);
  for (const c of clients) c.disconnect();
});

describe('auto-pipelined state client', () => {
  it('runs a command defined while an auto-pipeline is pending', async () => {
    const redis = await client();
    const crashes: unknown[] = [];
    const onCrash = (err: unknown) => crashes.push(err);
    process.on('uncaughtException', onCrash);
    try {
      const pending = redis.set(`${prefix}a`, '1');
      redis.defineCommand('twofoldTestIncr', { numberOfKeys: 1, lua: "return redis.call('INCR', KEYS[1])" });
      // Sent on its own, so it may overtake the pending pipeline: callers await what must come first.
      const script = (redis as unknown as { twofoldTestIncr(key: string): Promise<number> }).twofoldTestIncr(
        `${prefix}c`,
      );
      expect(await pending).toBe('OK');
      expect(await script).toBe(1);
      expect(await redis.get(`${prefix}a`)).toBe('1');
      await new Promise((resolve) => setTimeout(resolve, 50));
    } finally {
      process.off('uncaughtException', onCrash);
    }
    expect(crashes).toEqual([]);
  });

  it('sends runScript in the same pipeline as other commands, and loads a script Redis does not know', async () => {
    const redis = await client();
    const lua = `return redis.call('INCRBY', KEYS[1], ARGV[1]) -- ${randomUUID()}`;
    const key = `${prefix}b`;
    // Unknown to Redis (a fresh script text): EVALSHA answers NOSCRIPT, EVAL runs and caches it.
    await redis.set(key, '10');
    expect(await runScript(redis, 'incrBy', lua, [key], [5])).toBe(15);
    expect(await redis.script('EXISTS', createHash('sha1').update(lua).digest('hex'))).toEqual([1]);
    // Known now: EVALSHA goes out in the tick's pipeline, in order with the other commands.
    const results = await Promise.all([
      redis.set(key, '10'),
      runScript(redis, 'incrBy', lua, [key], [5]),
      runScript(redis, 'incrBy', lua, [key], [1]),
      redis.get(key),
    ]);
    expect(results).toEqual(['OK', 15, 16, '16']);
  });

  it('names the script in its error', async () => {
    const redis = await client();
    await expect(runScript(redis, 'broken', "return redis.call('NOPE')", [], [])).rejects.toThrow(
      /^broken: /,
    );
  });
});
