// Lockout state in real Redis, without Kafka: the sliding windows' edges, dedupe by event
// id, known-good networks, lockouts imposed once, lifted once, read by the verifier's
// reader. Each window counts an entry for an event at t when its time is > t - window.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backoffSchedule, resolveLockoutRules } from '@twofold/lockout';
import { createRedis, waitForRedis, type Redis } from '@twofold/redis';
import {
  createLockoutStore,
  liftLockout,
  listLockouts,
  readLockState,
  type LockoutImposition,
  type UserFailureCounts,
} from '@twofold/state';
import { lockoutStoreSettings } from '../../services/lockout-detector/src/lockout-detector.js';
import { stackEnv } from '../support/stack.js';

const rules = resolveLockoutRules({
  userIp: { windowSeconds: 10, failures: 3 },
  user: { windowSeconds: 20 },
  source: { windowSeconds: 30 },
});
const W_PAIR = 10_000;
const W_SRC = 20_000;
const W_SOURCE = 30_000;
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

function fresh(basesPerCall = 64) {
  prefix = `t:lockout-state-${randomUUID().slice(0, 8)}:`;
  prefixes.push(prefix);
  // Gates at 0: every flag and count is read, whatever the thresholds.
  const settings = lockoutStoreSettings(rules, basesPerCall);
  const gates = { streak: 0, sources: 0, pair: 0, ipUsers: 0, networkUsers: 0 };
  store = createLockoutStore(redis, prefix, { ...settings, gates });
}

const T0 = Date.UTC(2026, 10, 28, 9, 0, 0);

async function fail(username: string, ip: string, at: number, id = randomUUID(), now = at) {
  const network = ip.split('.').slice(0, 3).join('.') + '.0/24';
  const { users, networks } = await store.countBatch({
    users: new Map([[username, [{ kind: 'failure', id, at, ip, network }]]]),
    networks: new Map([[network, [{ id, at, ip, username }]]]),
    spray: [{ id, at, username, ip }],
    now,
  });
  return { user: users.get(username)![0] as UserFailureCounts, network: networks.get(network)![0]! };
}

describe('sliding windows', () => {
  it('(user, IP): an entry counts until exactly one window later', async () => {
    fresh();
    expect((await fail('alice', '198.51.100.1', T0)).user.pairFailures).toBe(1);
    expect((await fail('alice', '198.51.100.1', T0 + W_PAIR - 1)).user.pairFailures).toBe(2);
    // At T0 + W the first failure is exactly one window old: out.
    expect((await fail('alice', '198.51.100.1', T0 + W_PAIR)).user.pairFailures).toBe(2);
    expect((await fail('alice', '198.51.100.1', T0 + 2 * W_PAIR - 2)).user.pairFailures).toBe(3);
    expect((await fail('alice', '198.51.100.1', T0 + 2 * W_PAIR - 1)).user.pairFailures).toBe(3);
    // Another IP has its own window.
    expect((await fail('alice', '198.51.100.2', T0 + 2 * W_PAIR - 1)).user.pairFailures).toBe(1);
  });

  it('user sources: distinct IPs, the latest failure of each counts', async () => {
    fresh();
    expect((await fail('bob', '198.51.100.1', T0)).user.userSources).toBe(1);
    expect((await fail('bob', '198.51.100.2', T0 + 1)).user.userSources).toBe(2);
    expect((await fail('bob', '198.51.100.1', T0 + W_SRC - 1)).user.userSources).toBe(2);
    // 198.51.100.2 (at T0 + 1) leaves the window at T0 + 1 + W; .1 was refreshed.
    expect((await fail('bob', '198.51.100.3', T0 + W_SRC)).user.userSources).toBe(3);
    expect((await fail('bob', '198.51.100.3', T0 + W_SRC + 1)).user.userSources).toBe(2);
  });

  it('IP and network: distinct users in the window, the latest failure of each', async () => {
    fresh();
    let last = await fail('u1', '203.0.113.5', T0);
    expect(last.network).toMatchObject({ ipUsers: 1, networkUsers: 1 });
    last = await fail('u1', '203.0.113.5', T0 + 1);
    expect(last.network).toMatchObject({ ipUsers: 1, networkUsers: 1 });
    last = await fail('u2', '203.0.113.6', T0 + W_SOURCE - 1);
    expect(last.network).toMatchObject({ ipUsers: 1, networkUsers: 2 });
    last = await fail('u3', '203.0.113.5', T0 + W_SOURCE);
    // u1's failure at T0 is out, the one at T0 + 1 is still in.
    expect(last.network).toMatchObject({ ipUsers: 2, networkUsers: 3 });
    last = await fail('u3', '203.0.113.5', T0 + W_SOURCE + 1);
    expect(last.network).toMatchObject({ ipUsers: 1, networkUsers: 2 });
  });

  it('counts an event id once, even redelivered much later; a redelivery gets the current counts', async () => {
    fresh();
    const id = randomUUID();
    const first = await fail('carol', '198.51.100.9', T0, id);
    expect(first.user).toMatchObject({ duplicate: false, streak: 1, pairFailures: 1, userSources: 1 });
    expect(first.network).toMatchObject({ ipUsers: 1, networkUsers: 1 });
    await fail('carol', '198.51.100.9', T0 + 5);
    const again = await fail('carol', '198.51.100.9', T0, id, T0 + 60_000);
    expect(again.user).toMatchObject({ duplicate: true, streak: 2, pairFailures: 2, userSources: 1 });
    expect(again.network).toMatchObject({ ipUsers: 1, networkUsers: 1 });
    const zscore = await redis.zscore(`${prefix}lo:{n:198.51.100.0/24}:users`, 'carol');
    expect(Number(zscore)).toBe(T0 + 5); // the latest time stays
  });

  it('groups many users and networks into one call, on one Redis or one base per call (Cluster)', async () => {
    for (const bases of [64, 1]) {
      fresh(bases);
      const users = new Map<
        string,
        { kind: 'failure'; id: string; at: number; ip: string; network: string }[]
      >();
      for (let u = 0; u < 30; u++) {
        users.set(
          `user${u}`,
          [1, 2, 3].map((k) => ({
            kind: 'failure' as const,
            id: `${u}-${k}`,
            at: T0 + k,
            ip: `192.0.2.${k}`,
            network: '192.0.2.0/24',
          })),
        );
      }
      const networks = new Map([
        ['192.0.2.0/24', [...users].flatMap(([username, list]) => list.map((f) => ({ ...f, username })))],
      ]);
      const counts = await store.countBatch({ users, networks, spray: [], now: T0 });
      expect((counts.users.get('user29')![2] as UserFailureCounts).streak).toBe(3);
      expect(counts.networks.get('192.0.2.0/24')!.at(-1)).toMatchObject({ networkUsers: 30, ipUsers: 30 });
    }
  });
});

describe('streak and known-good networks', () => {
  const complete = (username: string, session: string, at: number, id = randomUUID()) =>
    store.countBatch({
      users: new Map([[username, [{ kind: 'complete' as const, id, at, session }]]]),
      networks: new Map(),
      spray: [],
      now: Date.now(),
    });
  const login = (username: string, network: string, session: string, id = randomUUID()) =>
    store.countBatch({
      users: new Map([[username, [{ kind: 'login' as const, id, at: Date.now(), network, session }]]]),
      networks: new Map(),
      spray: [],
      now: Date.now(),
    });

  it('a completed sign-in resets the streak and makes its network known, in either order', async () => {
    fresh();
    const now = Date.now();
    await fail('dave', '198.51.100.7', now);
    expect((await fail('dave', '198.51.100.7', now + 1)).user.streak).toBe(2);
    await login('dave', '198.51.100.0/24', 's1');
    await complete('dave', 's1', now + 2);
    const after = await fail('dave', '198.51.100.8', now + 3);
    expect(after.user).toMatchObject({
      streak: 1,
      knownNetwork: true,
      streakFromKnownNetworks: 1,
      pairFailures: 0,
    });
    // A failure from before the sign-in, read late (another topic) or again, does not count.
    expect((await fail('dave', '192.0.2.9', now + 1)).user).toMatchObject({ duplicate: false, streak: 1 });
    // Second factor first, primary login after (two topics, any order).
    await complete('dave', 's2', now + 4);
    await login('dave', '203.0.113.0/24', 's2');
    expect((await fail('dave', '203.0.113.4', now + 5)).user).toMatchObject({
      knownNetwork: true,
      streak: 1,
    });
    // A password alone does not make a network known.
    await login('dave', '192.0.2.0/24', 's3');
    expect((await fail('dave', '192.0.2.4', now + 6)).user).toMatchObject({ knownNetwork: false, streak: 2 });
  });
});

describe('lockouts', () => {
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

  it('imposes once, announces again for the same cause, doubles per level, ends permanent after N', async () => {
    fresh();
    const now = Date.now();
    const first = imposition();
    const [a] = await store.impose([first], now);
    expect(a).toMatchObject({
      status: 'imposed',
      record: { level: 1, until: new Date(now + 60_000).toISOString() },
    });
    const [again] = await store.impose([first], now + 1);
    expect(again).toMatchObject({ status: 'existing', record: { lockId: a!.record.lockId } });
    const [other] = await store.impose([imposition()], now + 2);
    expect(other).toBeUndefined();
    expect(await redis.pttl(`${a!.ref.base}:${a!.ref.lockSub}`)).toBeGreaterThan(55_000);

    // Expired: the next one doubles; the third is permanent when permanentAfter is 2.
    await redis.del(`${a!.ref.base}:${a!.ref.lockSub}`);
    const [b] = await store.impose([imposition({ permanentAfter: 2 })], now);
    expect(b!.record).toMatchObject({ level: 2, until: new Date(now + 120_000).toISOString() });
    await redis.del(`${b!.ref.base}:${b!.ref.lockSub}`);
    const [c] = await store.impose([imposition({ permanentAfter: 2 })], now);
    expect(c!.record).toMatchObject({ level: 3, until: null });
    expect(await redis.pttl(`${c!.ref.base}:${c!.ref.lockSub}`)).toBe(-1);
    const state = await readLockState(redis, prefix, 'ERIN', '198.51.100.3');
    expect(state.userIpLock).toEqual({ until: null });
    expect((await readLockState(redis, prefix, 'erin', '198.51.100.4')).userIpLock).toBeNull();
  });

  it('lifts at expiry once, never after an admin lift; lists what is in force', async () => {
    fresh();
    const now = Date.now();
    const [a] = await store.impose([imposition({ schedule: [50] })], now);
    expect(await store.liftAtExpiry(a!.ref, now)).toEqual({ status: 'early', untilMs: now + 50 });
    expect((await listLockouts(redis, prefix, { now })).lockouts.map((l) => l.lockId)).toEqual([
      a!.record.lockId,
    ]);
    expect(await store.liftAtExpiry(a!.ref, now + 50)).toEqual({ status: 'lift' });
    expect(await store.liftAtExpiry(a!.ref, now + 51)).toEqual({ status: 'lift' }); // a retried job: same answer
    expect((await listLockouts(redis, prefix, { now })).lockouts).toEqual([]);

    const userLock = imposition({
      target: { kind: 'user', username: 'erin' },
      scope: 'user',
      key: 'erin',
      rule: 'consecutive_failures',
      sparesKnownNetworks: true,
    });
    const [b] = await store.impose([userLock], now);
    expect((await readLockState(redis, prefix, 'erin', '192.0.2.1')).userLock).toEqual({
      until: b!.record.until,
    });
    const lifted = await liftLockout(redis, prefix, 'user', 'Erin');
    expect(lifted.map((l) => l.lockId)).toEqual([b!.record.lockId]);
    expect(await store.liftAtExpiry(b!.ref, now + 10 ** 9)).toEqual({ status: 'lifted', by: 'admin' });
    expect(await liftLockout(redis, prefix, 'user', 'erin')).toEqual([]);
    expect((await readLockState(redis, prefix, 'erin', '192.0.2.1')).userLock).toBeNull();
    // A redelivery of the same cause does not bring the lifted lockout back.
    expect(await store.impose([userLock], now)).toEqual([undefined]);
  });
});
