// Failures read again after the lockout they were judged under has expired (at-least-once
// delivery: the detector counted them, then crashed before the commit, and came back once
// the lockout was over) are judged as they were then: no new lockout of that key, not one
// level up. A failure after the lockout's end follows the rules, backoff included. Locks
// last seconds here, so they expire (and the lift job announces it) within the test; the
// redelivery is the very same events (same ids and times) on the topic again.
//
// Also: an admin lift of a user keeps the streak's ids (the dedupe of failures), so failures
// read again after it are still a redelivery, and announce what they imposed elsewhere.
import { ROOT_CONTEXT } from '@opentelemetry/api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AnyTwofoldEvent } from '@twofold/contracts';
import type { ConsumedEvent, EventProducer } from '@twofold/kafka';
import { resolveLockoutRules } from '@twofold/lockout';
import type { Redis } from '@twofold/redis';
import { liftLockout, lockoutIdOf, readLockState } from '@twofold/state';
import { Registry } from '@twofold/telemetry';
import type { LockoutDetector } from '../../services/lockout-detector/src/lockout-detector.js';
import { createLockoutHandler } from '../../services/lockout-detector/src/lockout.consumer.js';
import { createLockoutMetrics } from '../../services/lockout-detector/src/lockout.metrics.js';
import { eventually, quietLogger, type Isolated } from '../support/stack.js';
import {
  countInStore,
  detectorCaughtUp,
  failedLogin,
  nistCrossing,
  startDetectorWorld,
  type DetectorWorld,
} from './lockout-support.js';

// Every lockout lasts 5 s, doubling to 20 s; thresholds are the defaults.
const rules = resolveLockoutRules({
  userIp: { lockSeconds: 5, maxLockSeconds: 20 },
  source: { blockSeconds: 5, maxBlockSeconds: 20 },
  hardLock: { lockSeconds: 5, maxLockSeconds: 20 },
  user: { forceSecondFactorSeconds: 5 },
});

type Security = {
  id: string;
  type: string;
  time: string;
  data: Record<string, unknown> & {
    key?: string;
    lockId?: string;
    level?: number;
    until?: string;
    by?: string;
    mode?: string;
  };
};

let started: DetectorWorld;
let world: Isolated;
let redis: Redis;
let detector: LockoutDetector;
let security: DetectorWorld['security'];

beforeAll(async () => {
  started = await startDetectorWorld('lockout-expiry-redelivery', rules);
  ({ world, redis, detector, security } = started);
});

afterAll(async () => {
  await started?.stop();
});

const prefix = () => started.prefix;
const caughtUp = () => detectorCaughtUp(world, started.groupId);
const lockState = (username: string, ip: string) => readLockState(redis, prefix(), username, ip);
const userKey = (username: string, sub: string) => `${prefix()}lo:{u:${username}}:${sub}`;
const networkKey = (network: string, sub: string) => `${prefix()}lo:{n:${network}}:${sub}`;
const events = () => security.json<Security>();
const imposed = (key: string) =>
  events().filter((e) => e.type === 'twofold.lockout.imposed' && e.data.key === key);
const lockIdsOf = (key: string) => new Set(imposed(key).map((e) => e.data.lockId));

const failed = failedLogin;

async function publish(batch: readonly AnyTwofoldEvent[]) {
  for (let i = 0; i < batch.length; i += 1000)
    await world.producer.publish('login', batch.slice(i, i + 1000));
}

/** Waits for the lift job to announce the end of a lockout (by expiry). */
async function liftedAtExpiry(lockId: string) {
  const lifted = await eventually(
    async () => events().find((e) => e.type === 'twofold.lockout.lifted' && e.data.lockId === lockId),
    30_000,
    `the lift at expiry of ${lockId}`,
  );
  expect(lifted.data.by).toBe('expiry');
}

/** The first lockout.imposed of a key other than those given. */
const another = (key: string, known: readonly (string | undefined)[], what: string) =>
  eventually(async () => imposed(key).find((e) => !known.includes(e.data.lockId)), 30_000, what);

describe('a redelivery after a lockout expired', () => {
  it('(user, IP): the failures judged under the lock impose nothing; a new one locks, one level up', async () => {
    const user = 'expiry-pair';
    const ip = '198.51.100.61';
    const key = `${user}|${ip}`;
    const start = Date.now() - 30_000;
    const crossing = Array.from({ length: 5 }, (_, i) => failed(user, ip, new Date(start + i * 1000)));
    await publish(crossing);
    const first = await eventually(async () => imposed(key)[0], 30_000, 'the (user, IP) lock');
    expect(first.data).toMatchObject({ level: 1, failures: 5 });

    // Two more while it is in force: counted, and no new lock (one is in force).
    const during = [failed(user, ip, new Date()), failed(user, ip, new Date())];
    await publish(during);
    await caughtUp();
    expect((await lockState(user, ip)).userIpLock).toEqual({ until: first.data.until });
    expect(lockIdsOf(key)).toEqual(new Set([first.data.lockId]));

    await liftedAtExpiry(first.data.lockId!);
    expect((await lockState(user, ip)).userIpLock).toBeNull();

    // The batch read again: judged as under the lock, as it was then.
    await publish([...crossing, ...during]);
    await caughtUp();
    expect(lockIdsOf(key)).toEqual(new Set([first.data.lockId]));
    expect((await lockState(user, ip)).userIpLock).toBeNull();
    expect(await redis.exists(userKey(user, `pairlock:${ip}`))).toBe(0);
    expect(await redis.get(userKey(user, `pairlevel:${ip}`))).toBe('1');

    // A failure never seen before is judged now, whatever its time says: one stamped before
    // the end (an app whose clock runs behind, or read late) locks again, twice as long.
    // Skipping it by its time would hand an attacker free guesses after every lockout.
    const late = failed(user, ip, new Date(Date.parse(first.data.until!) - 500));
    await publish([late]);
    const second = await another(key, [first.data.lockId], 'the lock of the late, new failure');
    expect(second.data).toMatchObject({ level: 2, failures: 8 });
    expect(second.data.lockId).toBe(lockoutIdOf(userKey(user, `pairlock:${ip}`), late.id));
    expect(Date.parse(second.data.until!) - Date.parse(second.time)).toBe(10_000);
    expect((await lockState(user, ip)).userIpLock).toEqual({ until: second.data.until });
  });

  it('IP: the users judged under the block impose nothing; a new user blocks it again, one level up', async () => {
    const ip = '203.0.113.90';
    const start = Date.now() - 30_000;
    const crossing = Array.from({ length: 20 }, (_, i) =>
      failed(`expiry-ip-${i}`, ip, new Date(start + i * 100)),
    );
    await publish(crossing);
    const first = await eventually(async () => imposed(ip)[0], 30_000, 'the IP block');
    expect(first.data).toMatchObject({ rule: 'credential_stuffing_ip', level: 1, failures: 20 });

    const during = Array.from({ length: 3 }, (_, i) => failed(`expiry-ip-during-${i}`, ip, new Date()));
    await publish(during);
    await caughtUp();
    expect((await lockState('expiry-ip-during-0', ip)).userIpLock).toEqual({ until: first.data.until });
    expect(lockIdsOf(ip)).toEqual(new Set([first.data.lockId]));

    await liftedAtExpiry(first.data.lockId!);
    await publish([...crossing, ...during]);
    await caughtUp();
    expect(lockIdsOf(ip)).toEqual(new Set([first.data.lockId]));
    expect((await lockState('expiry-ip-3', ip)).userIpLock).toBeNull();
    expect(await redis.exists(networkKey('203.0.113.0/24', `iplock:${ip}`))).toBe(0);
    expect(await redis.get(networkKey('203.0.113.0/24', `iplevel:${ip}`))).toBe('1');

    // A new user failing from the IP: 24 users in the window, blocked again at once.
    await publish([failed('expiry-ip-new', ip, new Date())]);
    const second = await another(ip, [first.data.lockId], 'the block of the new failure');
    expect(second.data).toMatchObject({ level: 2, failures: 24 });
    expect((await lockState('expiry-ip-new', ip)).userIpLock).toEqual({ until: second.data.until });
  });

  it('network: the users judged under the block of the /24 impose nothing; a new one blocks it again', async () => {
    const network = '100.73.5.0/24';
    const start = Date.now() - 30_000;
    // One user from each of 50 IPs of one network: no IP is blocked, the network is.
    const crossing = Array.from({ length: 50 }, (_, i) =>
      failed(`expiry-net-${i}`, `100.73.5.${i + 1}`, new Date(start + i * 100)),
    );
    await publish(crossing);
    const first = await eventually(async () => imposed(network)[0], 30_000, 'the network block');
    expect(first.data).toMatchObject({ rule: 'credential_stuffing_network', level: 1, failures: 50 });

    const during = [
      failed('expiry-net-during-0', '100.73.5.100', new Date()),
      failed('expiry-net-during-1', '100.73.5.101', new Date()),
    ];
    await publish(during);
    await caughtUp();
    expect(lockIdsOf(network)).toEqual(new Set([first.data.lockId]));

    await liftedAtExpiry(first.data.lockId!);
    await publish([...crossing, ...during]);
    await caughtUp();
    expect(lockIdsOf(network)).toEqual(new Set([first.data.lockId]));
    expect((await lockState('expiry-net-3', '100.73.5.4')).userIpLock).toBeNull();
    expect(await redis.exists(networkKey(network, 'netlock'))).toBe(0);
    expect(await redis.get(networkKey(network, 'netlevel'))).toBe('1');

    await publish([failed('expiry-net-new', '100.73.5.200', new Date())]);
    const second = await another(network, [first.data.lockId], 'the block of the new failure');
    expect(second.data).toMatchObject({ level: 2, failures: 53 });
  });

  it('user: neither the NIST lock nor the forced second factor comes back; a new failure brings both', async () => {
    const user = 'expiry-user';
    const { ips, failures: crossing } = nistCrossing(user, '100.74');
    await publish(crossing);
    const hard = await eventually(
      async () => imposed(user).find((e) => e.data.mode === 'deny'),
      30_000,
      'the NIST lock',
    );
    expect(hard.data).toMatchObject({ rule: 'consecutive_failures', failures: 100, level: 1 });
    const force = await eventually(
      async () => imposed(user).find((e) => e.data.mode === 'force_second_factor'),
      30_000,
      'the forced second factor',
    );

    const during = ips.slice(0, 3).map((ip) => failed(user, ip, new Date()));
    await publish(during);
    await caughtUp();
    expect(lockIdsOf(user)).toEqual(new Set([hard.data.lockId, force.data.lockId]));

    await liftedAtExpiry(hard.data.lockId!);
    await liftedAtExpiry(force.data.lockId!);
    await publish([...crossing, ...during]);
    await caughtUp();
    expect(lockIdsOf(user)).toEqual(new Set([hard.data.lockId, force.data.lockId]));
    expect(await lockState(user, ips[0]!)).toMatchObject({ userLock: null, forceSecondFactor: false });
    expect(await redis.exists(userKey(user, 'lock'), userKey(user, 'force'))).toBe(0);
    expect(await redis.get(userKey(user, 'locklevel'))).toBe('1');

    // A new failure, from a twelfth IP: 109 in a row and 12 sources in the hour.
    await publish([failed(user, '100.74.99.9', new Date())]);
    const known = [hard.data.lockId, force.data.lockId];
    const hardAgain = await eventually(
      async () => imposed(user).find((e) => e.data.mode === 'deny' && !known.includes(e.data.lockId)),
      30_000,
      'the NIST lock of the new failure',
    );
    expect(hardAgain.data).toMatchObject({ level: 2, failures: 109 });
    await eventually(
      async () =>
        imposed(user).find((e) => e.data.mode === 'force_second_factor' && !known.includes(e.data.lockId)),
      30_000,
      'the forced second factor of the new failure',
    );
  });
});

describe('a redelivery after an admin lift of a user', () => {
  const count = (username: string, ip: string, failures: readonly { id: string; at: number }[]) =>
    countInStore(detector, username, ip, failures);

  it('is still read as a redelivery: the streak keeps its ids, uncounted', async () => {
    const ip = '198.51.100.71';
    const failures = Array.from({ length: 8 }, (_, i) => ({
      id: `lifted-dedupe-${i}`,
      at: Date.now() - 60_000 + i,
    }));
    expect((await count('lifted-dedupe', ip, failures)).map((r) => r.duplicate)).toEqual(
      failures.map(() => false),
    );
    await liftLockout(redis, prefix(), 'user', 'lifted-dedupe');
    const again = await count('lifted-dedupe', ip, failures);
    expect(again.map((r) => r.duplicate)).toEqual(failures.map(() => true));
    expect(again.map((r) => r.streak)).toEqual(failures.map(() => 0));
    // The reset expires before the streak does: the ids kept still count nothing.
    await redis.del(userKey('lifted-dedupe', 'reset'));
    expect(
      (await count('lifted-dedupe', ip, [{ id: 'lifted-dedupe-new', at: Date.now() }]))[0],
    ).toMatchObject({
      duplicate: false,
      streak: 1,
    });
  });

  it('announces the (user, IP) lock that a failure read again imposed before the crash', async () => {
    const user = 'lifted-crash';
    const ip = '198.51.100.72';
    const start = Date.now() - 30_000;
    const failures = Array.from({ length: 5 }, (_, i) => failed(user, ip, new Date(start + i * 1000)));

    // The detector counts the batch and imposes the lock, then crashes before announcing it
    // (and before the commit): the real handler, with a producer that cannot publish.
    const crashing = {
      ...world.producer,
      topics: world.producer.topics,
      publish: () => Promise.reject(new Error('injected crash: imposed, not yet announced or committed')),
    } as EventProducer;
    const handle = createLockoutHandler({
      store: detector.store,
      producer: crashing,
      lifts: { schedule: () => Promise.resolve() },
      // A lock of 10 s: still in force when the batch comes again.
      rules: resolveLockoutRules({ userIp: { lockSeconds: 10, maxLockSeconds: 20 } }),
      metrics: createLockoutMetrics(new Registry()),
      logger: quietLogger(),
      clock: Date.now,
    });
    const batch: ConsumedEvent[] = failures.map((event, i) => ({
      event,
      role: 'login',
      topic: world.topics.login,
      partition: 0,
      offset: String(i),
      timestamp: Date.now(),
      key: user,
      traceContext: ROOT_CONTEXT,
    }));
    await expect(handle(batch)).rejects.toThrow('injected crash');
    const lock = (await lockState(user, ip)).applied[0]!;
    expect(lock).toMatchObject({ scope: 'user_ip', level: 1 });

    // Meanwhile an admin lifts the user (not the (user, IP) lock); then the batch comes again.
    await liftLockout(redis, prefix(), 'user', user);
    await publish(failures);
    const announced = await eventually(
      async () => imposed(`${user}|${ip}`)[0],
      30_000,
      'the lock announced by the redelivery',
    );
    expect(announced.data).toMatchObject({ lockId: lock.lockId, level: 1, until: lock.until });
    // Announced with a lift job: it is lifted at its end.
    await liftedAtExpiry(lock.lockId);
    await caughtUp();
    expect(lockIdsOf(`${user}|${ip}`)).toEqual(new Set([lock.lockId]));
  });
});
