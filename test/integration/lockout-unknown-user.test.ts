// Failures for usernames the app has no account for (`unknown_user`): a combo list of
// random names must not fill Redis with per-user state (Redis runs without eviction: full,
// it refuses every write and every decision fails closed). Such a failure keeps only the
// user's streak, for the short window: no (user, IP) window and no sources window, which
// protect an account there is none of. A real account's failures keep all of it, and its
// streak keeps its memory, even when an unknown-user failure comes in between; source,
// network and spray counting is that of any failure, and a redelivery counts once.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEvent } from '@twofold/contracts';
import { DEFAULT_LOCKOUT_RULES } from '@twofold/lockout';
import { createRedis, waitForRedis, type Redis } from '@twofold/redis';
import { createLockoutStore, type LockoutUserSignal, type UserFailureCounts } from '@twofold/state';
import {
  lockoutStoreSettings,
  type LockoutDetector,
} from '../../services/lockout-detector/src/lockout-detector.js';
import { stackEnv, type Isolated } from '../support/stack.js';
import { detectorCaughtUp, startDetectorWorld, type DetectorWorld } from './lockout-support.js';

const rules = DEFAULT_LOCKOUT_RULES;
const HOUR = 3_600_000;
// The longest short window of a user: (user, IP) 15 min, sources 1 h.
const SHORT = Math.max(rules.userIp.windowSeconds, rules.user.windowSeconds) * 1000;
const STREAK_MEMORY = rules.hardLock.streakMemorySeconds * 1000;
const LONG = STREAK_MEMORY - HOUR;

let redis: Redis;
const prefixes: string[] = [];

beforeAll(async () => {
  redis = createRedis(stackEnv()['REDIS_URL']!, 'state', { commandTimeout: 5_000 });
  await waitForRedis(redis);
});

afterAll(async () => {
  for (const p of prefixes) {
    const keys = await redis.keys(`${p}*`);
    if (keys.length > 0) await redis.del(...keys);
  }
  await redis.quit();
});

/** Remaining ms of each key of a user, by sub-key (`streak`, `src`, `pair:<ip>`, …). */
async function userTtls(prefix: string, username: string): Promise<Record<string, number>> {
  const base = `${prefix}lo:{u:${username}}:`;
  const keys = await redis.keys(`${base}*`);
  const ttls = await Promise.all(keys.map((k) => redis.pttl(k)));
  return Object.fromEntries(keys.map((k, i) => [k.slice(base.length), ttls[i]!]));
}

/** Every key within the short window (and with an expiry at all). */
function expectShortLived(ttls: Record<string, number>) {
  expect(Object.keys(ttls).length).toBeGreaterThan(0);
  for (const [sub, ttl] of Object.entries(ttls)) {
    expect(ttl, sub).toBeGreaterThan(0);
    expect(ttl, sub).toBeLessThanOrEqual(SHORT);
  }
}

describe('unknown-user failures in the store', () => {
  let prefix: string;
  let store: ReturnType<typeof createLockoutStore>;
  const T0 = Date.now();

  beforeAll(() => {
    prefix = `t:lockout-unknown-${randomUUID().slice(0, 8)}:`;
    prefixes.push(prefix);
    store = createLockoutStore(redis, prefix, lockoutStoreSettings(rules));
  });

  type Failure = { username: string; ip: string; at: number; id?: string; unknownUser?: boolean };

  /** One countBatch call, as the detector makes it: users, networks and spray of the failures. */
  async function count(failures: readonly Failure[]) {
    const users = new Map<string, LockoutUserSignal[]>();
    const networks = new Map<string, { id: string; at: number; ip: string; username: string }[]>();
    const spray = [];
    const at: { username: string; network: string; u: number; n: number }[] = [];
    for (const f of failures) {
      const id = f.id ?? randomUUID();
      const network = f.ip.split('.').slice(0, 3).join('.') + '.0/24';
      const u = users.get(f.username) ?? [];
      u.push({ kind: 'failure', id, at: f.at, ip: f.ip, network, unknownUser: f.unknownUser ?? false });
      users.set(f.username, u);
      const n = networks.get(network) ?? [];
      n.push({ id, at: f.at, ip: f.ip, username: f.username });
      networks.set(network, n);
      spray.push({ id, at: f.at, username: f.username, ip: f.ip });
      at.push({ username: f.username, network, u: u.length - 1, n: n.length - 1 });
    }
    const counts = await store.countBatch({ users, networks, spray, now: Date.now() });
    return at.map((a) => ({
      user: counts.users.get(a.username)![a.u] as UserFailureCounts,
      network: counts.networks.get(a.network)![a.n]!,
    }));
  }
  const unknown = (username: string, ip: string, extra: Partial<Failure> = {}): Failure => ({
    username,
    ip,
    at: T0,
    unknownUser: true,
    ...extra,
  });
  const known = (username: string, ip: string, extra: Partial<Failure> = {}): Failure => ({
    username,
    ip,
    at: T0,
    ...extra,
  });

  it('a name with only unknown-user failures keeps only its streak, for the short window', async () => {
    // Ids ending in 0 are the ones that trim (one in 16): trimming must not extend either.
    await count([
      unknown('ghost-1', '198.51.100.1', { id: `${randomUUID()}0` }),
      unknown('ghost-1', '198.51.100.2'),
      unknown('ghost-1', '198.51.100.2', { id: `${randomUUID()}0` }),
    ]);
    await count([unknown('ghost-1', '198.51.100.3', { id: `${randomUUID()}0` })]);
    const ttls = await userTtls(prefix, 'ghost-1');
    // No (user, IP) window and no sources window: there is no account to lock.
    expect(Object.keys(ttls)).toEqual(['streak']);
    expectShortLived(ttls);
    // They still count on the user side within those windows.
    expect(await redis.zcard(`${prefix}lo:{u:ghost-1}:streak`)).toBe(4);
  });

  it("a real account's streak keeps the streak memory, even with an unknown-user failure in between", async () => {
    await count([known('real-1', '198.51.100.1', { id: `${randomUUID()}0` })]);
    const ttls = await userTtls(prefix, 'real-1');
    expect(Object.keys(ttls).sort()).toEqual(['pair:198.51.100.1', 'src', 'streak']);
    expect(ttls['streak']).toBeGreaterThan(LONG);
    expect(ttls['src']).toBeLessThanOrEqual(SHORT);
    // Real, then unknown-user failures in later calls (one trims).
    await count([known('mixed-1', '198.51.100.1')]);
    await count([unknown('mixed-1', '198.51.100.1')]);
    await count([unknown('mixed-1', '198.51.100.1', { id: `${randomUUID()}0` })]);
    expect((await userTtls(prefix, 'mixed-1'))['streak']).toBeGreaterThan(LONG);
    // Unknown-user first, a real one after (in the same call or a later one): the memory again.
    await count([unknown('mixed-2', '198.51.100.1'), known('mixed-2', '198.51.100.1')]);
    expect((await userTtls(prefix, 'mixed-2'))['streak']).toBeGreaterThan(LONG);
    await count([unknown('mixed-3', '198.51.100.1')]);
    expect((await userTtls(prefix, 'mixed-3'))['streak']).toBeLessThanOrEqual(SHORT);
    await count([known('mixed-3', '198.51.100.1')]);
    expect((await userTtls(prefix, 'mixed-3'))['streak']).toBeGreaterThan(LONG);
    // Every failure of the streak counts, whatever its reason.
    for (const name of ['mixed-1', 'mixed-2', 'mixed-3'])
      expect(await redis.zcard(`${prefix}lo:{u:${name}}:streak`), name).toBeGreaterThanOrEqual(2);
  });

  it('real and unknown-user failures of one name in one call: only the real one is in the pair and sources windows', async () => {
    const [real, ghost, later] = await count([
      known('mixed-4', '192.0.2.10'),
      unknown('mixed-4', '192.0.2.11', { id: `${randomUUID()}0` }),
      known('mixed-4', '192.0.2.10'),
    ]);
    expect(real!.user).toMatchObject({ duplicate: false, streak: 1, pairFailures: 1, userSources: 1 });
    expect(ghost!.user).toMatchObject({ duplicate: false, streak: 2, pairFailures: 0, userSources: 0 });
    expect(later!.user).toMatchObject({ duplicate: false, streak: 3, pairFailures: 2, userSources: 1 });
    const ttls = await userTtls(prefix, 'mixed-4');
    expect(Object.keys(ttls).sort()).toEqual(['pair:192.0.2.10', 'src', 'streak']);
    expect(ttls['streak']).toBeGreaterThan(LONG);
    expect(await redis.zrange(`${prefix}lo:{u:mixed-4}:src`, 0, -1)).toEqual(['192.0.2.10']);
    // The source side counts the unknown-user failure too.
    expect(ghost!.network).toMatchObject({ ipUsers: 1, networkUsers: 1 });
  });

  it('a redelivered unknown-user failure counts once, in every window', async () => {
    const id = randomUUID();
    const ip = '203.0.113.9';
    const first = await count([unknown('ghost-2', ip, { id }), unknown('ghost-3', ip)]);
    expect(first[0]!.user).toMatchObject({ duplicate: false, streak: 1, pairFailures: 0, userSources: 0 });
    expect(first[1]!.network).toMatchObject({ ipUsers: 2, networkUsers: 2 });
    const again = await count([unknown('ghost-2', ip, { id })]);
    expect(again[0]!.user).toMatchObject({ duplicate: true, streak: 1, pairFailures: 0, userSources: 0 });
    expect(again[0]!.network).toMatchObject({ ipUsers: 2, networkUsers: 2 });
    expect((await store.sprayWindow(Date.now())).failures).toBeGreaterThanOrEqual(2);
    expectShortLived(await userTtls(prefix, 'ghost-2'));
  });
});

describe('unknown-user failures through the detector (Kafka to Redis)', () => {
  let detectorWorld: DetectorWorld;
  let world: Isolated;
  let detector: LockoutDetector;
  const groupId = () => detectorWorld.groupId;

  beforeAll(async () => {
    detectorWorld = await startDetectorWorld('lockout-unknown-user', rules, { background: false });
    ({ world, detector } = detectorWorld);
  });

  afterAll(async () => {
    await detectorWorld?.stop();
  });

  const failed = (username: string, ip: string, reason: 'bad_password' | 'unknown_user') =>
    createEvent('twofold.login.failed', 'app/jira', username, { appId: 'jira', ip, reason });
  const caughtUp = () => detectorCaughtUp(world, groupId());
  const prefix = () => world.config.redis.keyPrefix;

  it('only a short-lived streak for unknown users, the streak memory for real ones, a redelivery counted once', async () => {
    const stuffer = '198.18.7.7';
    const ghosts = Array.from({ length: 30 }, (_, i) => failed(`combo-${i}`, stuffer, 'unknown_user'));
    await world.producer.publish('login', [
      ...ghosts,
      failed('real-user', '192.0.2.50', 'bad_password'),
      failed('interleaved', '192.0.2.51', 'bad_password'),
    ]);
    await caughtUp();
    // The same user, now with an unknown-user reason (another app, say), in a later batch.
    await world.producer.publish('login', [failed('interleaved', '192.0.2.51', 'unknown_user')]);
    await caughtUp();

    for (let i = 0; i < ghosts.length; i++) {
      const ttls = await userTtls(prefix(), `combo-${i}`);
      // No `pair:*`, no `src`: only the streak, short-lived.
      expect(Object.keys(ttls), `combo-${i}`).toEqual(['streak']);
      expectShortLived(ttls);
    }
    // A real account's failure still fills its pair and sources windows.
    const real = await userTtls(prefix(), 'real-user');
    expect(Object.keys(real).sort()).toEqual(['pair:192.0.2.50', 'src', 'streak']);
    expect(real['streak']).toBeGreaterThan(LONG);
    expect((await userTtls(prefix(), 'interleaved'))['streak']).toBeGreaterThan(LONG);
    expect(await redis.zcard(`${prefix()}lo:{u:interleaved}:streak`)).toBe(2);
    // Its unknown-user failure is in the streak only, not in its pair or sources window.
    expect(await redis.zcard(`${prefix()}lo:{u:interleaved}:pair:192.0.2.51`)).toBe(1);
    expect(await redis.zcard(`${prefix()}lo:{u:interleaved}:src`)).toBe(1);

    // The source side saw every unknown-user failure: 30 users from one IP block it.
    const network = `${prefix()}lo:{n:198.18.7.0/24}`;
    expect(await redis.zcard(`${network}:ipusers:${stuffer}`)).toBe(30);
    expect(await redis.exists(`${network}:iplock:${stuffer}`)).toBe(1);
    const counted = async () => {
      const metric = await world.metrics.registry.getSingleMetric('twofold_lockout_failures_total')!.get();
      const of = (outcome: string) =>
        metric.values.find((v) => v.labels['outcome'] === outcome && v.labels['topic'] === 'login')?.value ??
        0;
      return { counted: of('counted'), duplicate: of('duplicate') };
    };
    expect(await counted()).toEqual({ counted: 33, duplicate: 0 });
    const sprayBefore = (await detector.store.sprayWindow(Date.now())).failures;
    const scoreBefore = await redis.zscore(`${network}:users`, 'combo-3');

    // A producer retry: the very same event again.
    await world.producer.publish('login', [ghosts[3]!]);
    await caughtUp();
    expect(await counted()).toEqual({ counted: 33, duplicate: 1 });
    expect(await redis.zcard(`${network}:ipusers:${stuffer}`)).toBe(30);
    expect(await redis.zcard(`${network}:users`)).toBe(30);
    expect(await redis.zscore(`${network}:users`, 'combo-3')).toBe(scoreBefore);
    expect(await redis.zcard(`${prefix()}lo:{u:combo-3}:streak`)).toBe(1);
    expect((await detector.store.sprayWindow(Date.now())).failures).toBe(sprayBefore);
    const again = await userTtls(prefix(), 'combo-3');
    expect(Object.keys(again)).toEqual(['streak']);
    expectShortLived(again);
  });
});
