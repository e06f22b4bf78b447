// Lockout state over time in real Redis (and BullMQ), without Kafka: a lift announced when
// a newer lockout already replaced the record, the backoff level outliving the lock, a
// completed sign-in forgetting the failures before it, the known-network streak bounded.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EventProducer } from '@twofold/kafka';
import { backoffSchedule, resolveLockoutRules } from '@twofold/lockout';
import { createQueue, createRedis, waitForRedis, type Redis } from '@twofold/redis';
import {
  createLockoutStore,
  liftLockout,
  readLockState,
  type LockoutImposition,
  type LockoutStoreSettings,
  type UserFailureCounts,
} from '@twofold/state';
import { Registry } from '@twofold/telemetry';
import { lockoutStoreSettings } from '../../services/lockout-detector/src/lockout-detector.js';
import {
  createLockoutLifts,
  LIFT_QUEUE,
  LIFT_RETRY,
  liftRetryDelay,
} from '../../services/lockout-detector/src/lockout-lift.worker.js';
import { createLockoutMetrics } from '../../services/lockout-detector/src/lockout.metrics.js';
import { eventually, quietLogger, stackEnv } from '../support/stack.js';

const rules = resolveLockoutRules({});
let redis: Redis;
let prefix: string;
let store: ReturnType<typeof createLockoutStore>;

beforeAll(async () => {
  redis = createRedis(stackEnv()['REDIS_URL']!, 'state');
  await waitForRedis(redis);
});
const prefixes: string[] = [];
afterAll(async () => {
  for (const p of prefixes) {
    const keys = await redis.keys(`${p}*`);
    if (keys.length > 0) await redis.del(...keys);
  }
  await redis.quit();
});

function fresh(over: Partial<LockoutStoreSettings> = {}) {
  prefix = `t:lockout-lifecycle-${randomUUID().slice(0, 8)}:`;
  prefixes.push(prefix);
  // Gates at 0: every flag and count is read, whatever the thresholds.
  const gates = { streak: 0, sources: 0, pair: 0, ipUsers: 0, networkUsers: 0 };
  store = createLockoutStore(redis, prefix, { ...lockoutStoreSettings(rules), gates, ...over });
}

const imposition = (over: Partial<LockoutImposition> = {}): LockoutImposition => ({
  target: { kind: 'user_ip', username: 'erin', ip: '198.51.100.3' },
  causeId: randomUUID(),
  scope: 'user_ip',
  key: 'erin|198.51.100.3',
  mode: 'deny',
  rule: 'user_ip_backoff',
  failures: 5,
  schedule: backoffSchedule(60, 240),
  levelMemoryMs: 60_000,
  permanentAfter: 0,
  ...over,
});

/** A and then B on the same key: A's record is gone at its end (as Redis expires it). */
async function supersededPair(now: number) {
  const [a] = await store.impose([imposition({ schedule: [50] })], now);
  await redis.del(`${a!.ref.base}:${a!.ref.lockSub}`);
  const [b] = await store.impose([imposition()], now + 60);
  expect(b).toMatchObject({ status: 'imposed', record: { level: 2 } });
  return { a: a!, b: b! };
}

const indexScore = (member: string) => redis.zscore(`${prefix}lo:index`, member);

describe('a lift at expiry after a newer lockout of the same key', () => {
  it('is a lift (announced once), and leaves the newer lockout and its index entry alone', async () => {
    fresh();
    const now = Date.now();
    const { a, b } = await supersededPair(now);
    const member = `${b.ref.base}:${b.ref.lockSub}`;
    expect(await store.liftAtExpiry(a.ref, now + 70)).toEqual({ status: 'lift', superseded: true });
    // A retried job: the same answer.
    expect(await store.liftAtExpiry(a.ref, now + 80)).toEqual({ status: 'lift', superseded: true });
    expect(Number(await indexScore(member))).toBe(Date.parse(b.record.until!));
    expect((await readLockState(redis, prefix, 'erin', '198.51.100.3')).userIpLock).toEqual({
      until: b.record.until,
    });
    // B's own lift at its end removes the entry.
    expect(await store.liftAtExpiry(b.ref, Date.parse(b.record.until!))).toEqual({ status: 'lift' });
    expect(await indexScore(member)).toBeNull();
  });

  it('stays lifted by the admin when an admin lifted it first', async () => {
    fresh();
    const now = Date.now();
    const [a] = await store.impose([imposition()], now);
    expect((await liftLockout(redis, prefix, 'user_ip', 'erin|198.51.100.3')).map((l) => l.lockId)).toEqual([
      a!.record.lockId,
    ]);
    const [b] = await store.impose([imposition()], now + 1);
    expect(b).toMatchObject({ status: 'imposed' });
    expect(await store.liftAtExpiry(a!.ref, now + 60_000)).toEqual({ status: 'lifted', by: 'admin' });
  });

  it('is announced by the lift worker (BullMQ), retried with its own backoff after a failed publish', async () => {
    fresh();
    const published: { type: string; data: Record<string, unknown> }[] = [];
    let failures = 2;
    const producer = {
      publish: async (_role: string, events: readonly { type: string; data: unknown }[]) => {
        await Promise.resolve();
        if (failures-- > 0) throw new Error('broker unavailable');
        published.push(...events.map((e) => ({ type: e.type, data: e.data as Record<string, unknown> })));
      },
    } as unknown as EventProducer;
    const lifts = createLockoutLifts({
      redisUrl: stackEnv()['REDIS_URL']!,
      prefix,
      store,
      producer,
      metrics: createLockoutMetrics(new Registry()),
      logger: quietLogger(),
      clock: Date.now,
      concurrency: 2,
      work: true,
    });
    const queue = createQueue(LIFT_QUEUE, { url: stackEnv()['REDIS_URL']!, prefix });
    try {
      const now = Date.now();
      const { a } = await supersededPair(now);
      await lifts.scheduler.schedule([a], now);
      lifts.start();
      // Between attempts the job waits with the lift retry options.
      const waiting = await eventually(
        async () => (await queue.getJobs(['delayed'])).find((j) => j.attemptsMade >= 1),
        10_000,
        'a retry',
      );
      expect(waiting.opts).toMatchObject({ attempts: LIFT_RETRY.attempts, backoff: { type: 'lift' } });
      const lifted = await eventually(
        async () => published.find((e) => e.type === 'twofold.lockout.lifted'),
        10_000,
        "A's lockout.lifted",
      );
      expect(lifted.data).toMatchObject({ lockId: a.record.lockId, by: 'expiry', scope: 'user_ip' });
      expect(liftRetryDelay(1) + liftRetryDelay(2)).toBeLessThan(10_000);
    } finally {
      await lifts.close();
      await queue.close();
    }
  });
});

describe('backoff level', () => {
  it('is remembered for levelMemory after the lock ends, not from its start', async () => {
    fresh();
    const now = Date.now();
    const [a] = await store.impose(
      [imposition({ schedule: [120_000], levelMemoryMs: 60_000, permanentAfter: 1 })],
      now,
    );
    const level = `${a!.ref.base}:pairlevel:198.51.100.3`;
    expect(await redis.pttl(level)).toBeGreaterThan(170_000);
    expect(await redis.pttl(level)).toBeLessThanOrEqual(180_000);
    // A permanent lock has no end: the level is remembered for levelMemory from now.
    await redis.del(`${a!.ref.base}:${a!.ref.lockSub}`);
    const [b] = await store.impose(
      [imposition({ schedule: [120_000], levelMemoryMs: 60_000, permanentAfter: 1 })],
      now,
    );
    expect(b!.record).toMatchObject({ level: 2, until: null });
    expect(await redis.pttl(level)).toBeGreaterThan(50_000);
    expect(await redis.pttl(level)).toBeLessThanOrEqual(60_000);
  });
});

describe('streak', () => {
  // Ids ending in 'a' are never in the 1-in-16 sample that trims (its last byte % 16 is 1).
  const unsampled = () => `${randomUUID()}a`;
  const KNOWN = '198.51.100.0/24';

  async function fail(username: string, ip: string, at: number) {
    const id = unsampled();
    const network = ip.split('.').slice(0, 3).join('.') + '.0/24';
    const { users } = await store.countBatch({
      users: new Map([[username, [{ kind: 'failure', id, at, ip, network }]]]),
      networks: new Map(),
      spray: [],
      now: at,
    });
    return users.get(username)![0] as UserFailureCounts;
  }
  async function signIn(username: string, network: string, at: number) {
    const session = randomUUID();
    await store.countBatch({
      users: new Map([
        [
          username,
          [
            { kind: 'login' as const, id: unsampled(), at, network, session },
            { kind: 'complete' as const, id: unsampled(), at, session },
          ],
        ],
      ]),
      networks: new Map(),
      spray: [],
      now: at,
    });
  }

  it('forgets the failures before a completed sign-in, even once the reset has expired', async () => {
    fresh();
    const t = Date.now();
    const base = `${prefix}lo:{u:frank}`;
    await signIn('frank', KNOWN, t);
    for (let i = 1; i <= 3; i++) await fail('frank', '198.51.100.7', t + i); // known network
    for (let i = 4; i <= 6; i++) await fail('frank', '203.0.113.7', t + i);
    expect(await fail('frank', '203.0.113.7', t + 7)).toMatchObject({
      streak: 7,
      streakFromKnownNetworks: 3,
    });

    await signIn('frank', KNOWN, t + 8);
    expect(await redis.zcard(`${base}:streak`)).toBe(0);
    expect(await redis.zcard(`${base}:streakk`)).toBe(0);
    // The reset key expires (streakTtl after the sign-in) while later failures keep the streak alive.
    await redis.del(`${base}:reset`);
    expect(await fail('frank', '198.51.100.7', t + 9)).toMatchObject({
      streak: 1,
      streakFromKnownNetworks: 1,
    });
  });

  it('from known networks is trimmed and capped with the streak', async () => {
    fresh({ streakCap: 5 });
    const t = Date.now();
    await signIn('grace', KNOWN, t);
    for (let i = 1; i <= 12; i++) await fail('grace', '198.51.100.7', t + i);
    const base = `${prefix}lo:{u:grace}`;
    expect(await redis.zcard(`${base}:streak`)).toBe(5);
    expect(await redis.zcard(`${base}:streakk`)).toBe(5);
    // The latest are kept.
    expect(await redis.zrange(`${base}:streakk`, 0, 0, 'WITHSCORES')).toEqual([
      expect.any(String),
      String(t + 8),
    ]);
  });
});
