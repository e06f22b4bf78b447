// Failures read again after an admin lifted the lockout they caused (at-least-once delivery:
// the detector counted them, then crashed before the commit) are judged already: they impose
// no new lockout, not even one level up. Failures after the lift count from a fresh start.
// The admin lifts through the real route; the redelivery is the very same events (same ids
// and times) on the topic again.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import Fastify, { type FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { randomUUID } from 'node:crypto';
import type { AnyTwofoldEvent } from '@twofold/contracts';
import { resolveLockoutRules } from '@twofold/lockout';
import type { Redis } from '@twofold/redis';
import { liftLockout, readLockState } from '@twofold/state';
import type { AppsRepository } from '@twofold/store';
import { createAuthenticator } from '../../services/api/src/auth.js';
import { installProblemHandlers } from '../../services/api/src/problem.js';
import { adminLockoutsRoute } from '../../services/api/src/routes/admin-lockouts.route.js';
import type { LockoutDetector } from '../../services/lockout-detector/src/lockout-detector.js';
import { eventually, type Isolated } from '../support/stack.js';
import {
  countInStore,
  detectorCaughtUp,
  failedLogin,
  nistCrossing,
  startDetectorWorld,
  type DetectorWorld,
} from './lockout-support.js';

// Locks that outlast the test: only the admin lifts them.
const rules = resolveLockoutRules({ userIp: { lockSeconds: 600, maxLockSeconds: 600 } });
const ADMIN_KEY = 'test-admin-key-lift-redelivery';

type Security = {
  id: string;
  type: string;
  time: string;
  data: Record<string, unknown> & { scope?: string; key?: string; lockId?: string; level?: number };
};

let started: DetectorWorld;
let world: Isolated;
let redis: Redis;
let detector: LockoutDetector;
let security: DetectorWorld['security'];
let api: FastifyInstance;

beforeAll(async () => {
  started = await startDetectorWorld('lockout-lift-redelivery', rules);
  ({ world, redis, detector, security } = started);
  const app = Fastify().withTypeProvider<TypeBoxTypeProvider>();
  installProblemHandlers(app);
  const auth = createAuthenticator({ apps: {} as AppsRepository, adminKey: ADMIN_KEY });
  await app.register(adminLockoutsRoute({ auth, redis, keyPrefix: prefix(), producer: world.producer }));
  api = app as unknown as FastifyInstance;
});

afterAll(async () => {
  await api?.close();
  await started?.stop();
});

const groupId = () => started.groupId;
const prefix = () => started.prefix;
const caughtUp = () => detectorCaughtUp(world, groupId());
const lockState = (username: string, ip: string) => readLockState(redis, prefix(), username, ip);
const userKey = (username: string, sub: string) => `${prefix()}lo:{u:${username}}:${sub}`;
const networkKey = (network: string, sub: string) => `${prefix()}lo:{n:${network}}:${sub}`;
const imposed = (key: string) =>
  security.json<Security>().filter((e) => e.type === 'twofold.lockout.imposed' && e.data.key === key);
const lockIdsOf = (key: string) => new Set(imposed(key).map((e) => e.data.lockId));

/** Consecutive failures: those after the last reset. */
async function streakOf(username: string) {
  const reset = (await redis.get(userKey(username, 'reset'))) ?? '0';
  return redis.zcount(userKey(username, 'streak'), `(${reset}`, '+inf');
}

const failed = failedLogin;

async function publish(events: readonly AnyTwofoldEvent[]) {
  for (let i = 0; i < events.length; i += 1000)
    await world.producer.publish('login', events.slice(i, i + 1000));
}

async function lift(scope: string, key: string) {
  const response = await api.inject({
    method: 'DELETE',
    url: `/v1/admin/lockouts/${scope}/${encodeURIComponent(key)}`,
    headers: { authorization: `Bearer ${ADMIN_KEY}` },
  });
  expect(response.statusCode, response.body).toBe(200);
  return response.json<{ lifted: { lockId: string; level: number }[] }>().lifted;
}

describe('a redelivery after an admin lift', () => {
  it('(user, IP): the failures read again impose nothing; new failures count from the lift', async () => {
    const user = 'lift-pair';
    const ip = '198.51.100.21';
    const key = `${user}|${ip}`;
    const start = Date.now() - 60_000;
    const failures = Array.from({ length: 7 }, (_, i) => failed(user, ip, new Date(start + i * 1000)));
    await publish(failures);
    const first = await eventually(async () => imposed(key)[0], 30_000, 'the (user, IP) lock');
    expect(first.data).toMatchObject({ level: 1, failures: 5 });
    await caughtUp();

    const lifted = await lift('user_ip', key);
    expect(lifted.map((l) => l.lockId)).toEqual([first.data.lockId]);
    expect((await lockState(user, ip)).userIpLock).toBeNull();

    // The same seven failures again, as a redelivery brings them.
    await publish(failures);
    await caughtUp();
    expect((await lockState(user, ip)).userIpLock).toBeNull();
    expect(lockIdsOf(key)).toEqual(new Set([first.data.lockId]));
    expect(await redis.get(userKey(user, `pairlevel:${ip}`))).toBe('1');

    // Failures after the lift count, and only they: four lock nothing, the fifth locks.
    const later = Array.from({ length: 5 }, () => failed(user, ip, new Date()));
    await publish(later.slice(0, 4));
    await caughtUp();
    expect((await lockState(user, ip)).userIpLock).toBeNull();
    await publish(later.slice(4));
    const second = await eventually(
      async () => imposed(key).find((e) => e.data.lockId !== first.data.lockId),
      30_000,
      'the lock of the failures after the lift',
    );
    expect(second.data).toMatchObject({ failures: 5, level: 2 });
  });

  it('user: neither the NIST lock nor the forced second factor comes back; the streak starts at the lift', async () => {
    const user = 'lift-user';
    const { ips, failures } = nistCrossing(user, '100.70');
    await publish(failures);
    const hard = await eventually(
      async () => imposed(user).find((e) => e.data['mode'] === 'deny'),
      30_000,
      'the NIST lock',
    );
    expect(hard.data).toMatchObject({ rule: 'consecutive_failures', failures: 100, level: 1 });
    const force = await eventually(
      async () => imposed(user).find((e) => e.data['mode'] === 'force_second_factor'),
      30_000,
      'the forced second factor',
    );
    expect(force.data).toMatchObject({ rule: 'many_sources' });
    await caughtUp();

    const lifted = await lift('user', user);
    expect(lifted.map((l) => l.lockId).sort()).toEqual([hard.data.lockId, force.data.lockId].sort());

    // Read again in two batches: the failures past the ones that imposed are read apart.
    await publish(failures.slice(0, 100));
    await caughtUp();
    await publish(failures.slice(100));
    await caughtUp();
    expect(await lockState(user, ips[0]!)).toMatchObject({ userLock: null, forceSecondFactor: false });
    expect(lockIdsOf(user)).toEqual(new Set([hard.data.lockId, force.data.lockId]));
    expect(await redis.get(userKey(user, 'locklevel'))).toBe('1');
    expect(await streakOf(user)).toBe(0);

    // A failure after the lift counts, from a fresh start: one in the streak, one source.
    await publish([failed(user, '100.70.99.9', new Date())]);
    await caughtUp();
    expect(await streakOf(user)).toBe(1);
    expect(await lockState(user, ips[0]!)).toMatchObject({ userLock: null, forceSecondFactor: false });
    expect(lockIdsOf(user)).toEqual(new Set([hard.data.lockId, force.data.lockId]));
  });

  it('IP: the stuffing block does not come back; new users failing from the IP count from the lift', async () => {
    const ip = '203.0.113.80';
    const start = Date.now() - 60_000;
    const failures = Array.from({ length: 25 }, (_, i) =>
      failed(`lift-stuffed-${i}`, ip, new Date(start + i * 100)),
    );
    await publish(failures);
    const block = await eventually(async () => imposed(ip)[0], 30_000, 'the IP block');
    expect(block.data).toMatchObject({ rule: 'credential_stuffing_ip', failures: 20, level: 1 });
    await caughtUp();

    await lift('ip', ip);
    await publish(failures);
    await caughtUp();
    expect((await lockState('lift-stuffed-3', ip)).userIpLock).toBeNull();
    expect(lockIdsOf(ip)).toEqual(new Set([block.data.lockId]));
    expect(await redis.get(networkKey('203.0.113.0/24', `iplevel:${ip}`))).toBe('1');

    // Twenty new users after the lift: the block again, counting those twenty only.
    const later = Array.from({ length: 20 }, (_, i) => failed(`lift-new-${i}`, ip, new Date()));
    await publish(later.slice(0, 19));
    await caughtUp();
    expect((await lockState('lift-new-0', ip)).userIpLock).toBeNull();
    await publish(later.slice(19));
    const again = await eventually(
      async () => imposed(ip).find((e) => e.data.lockId !== block.data.lockId),
      30_000,
      'the block of the failures after the lift',
    );
    expect(again.data).toMatchObject({ failures: 20, level: 2 });
  });

  it('network: the block of the /24 does not come back after its lift', async () => {
    const network = '100.71.5.0/24';
    const start = Date.now() - 60_000;
    // One user from each of 55 IPs of one network: no IP is blocked, the network is.
    const failures = Array.from({ length: 55 }, (_, i) =>
      failed(`lift-net-${i}`, `100.71.5.${i + 1}`, new Date(start + i * 100)),
    );
    await publish(failures);
    const block = await eventually(async () => imposed(network)[0], 30_000, 'the network block');
    expect(block.data).toMatchObject({ rule: 'credential_stuffing_network', failures: 50, level: 1 });
    await caughtUp();

    await lift('ip', network);
    await publish(failures);
    await caughtUp();
    expect((await lockState('lift-net-3', '100.71.5.4')).userIpLock).toBeNull();
    expect(lockIdsOf(network)).toEqual(new Set([block.data.lockId]));

    await publish([failed('lift-net-new', '100.71.5.200', new Date())]);
    await caughtUp();
    expect((await lockState('lift-net-new', '100.71.5.200')).userIpLock).toBeNull();
    expect(lockIdsOf(network)).toEqual(new Set([block.data.lockId]));
  });
});

describe('the watermark of a lift', () => {
  const count = (username: string, ip: string, failures: readonly { id: string; at: number }[]) =>
    countInStore(detector, username, ip, failures);

  it('is the latest event time lifted when an app clock runs ahead, and is never lowered', async () => {
    const ip = '198.51.100.51';
    const now = Date.now();
    // Stamped two minutes ahead of the lift (within the future the detector accepts).
    const failures = Array.from({ length: 7 }, (_, i) => ({ id: randomUUID(), at: now + 120_000 + i }));
    expect((await count('skewed', ip, failures)).at(-1)).toMatchObject({ pairFailures: 7 });
    await liftLockout(redis, prefix(), 'user_ip', `skewed|${ip}`, { now });
    const mark = userKey('skewed', `liftedat:pair:${ip}`);
    expect(await redis.get(mark)).toBe(String(now + 120_006));
    // Read again: none reaches the threshold (below it a count is not checked against the mark).
    const again = await count('skewed', ip, failures);
    expect(Math.max(...again.map((r) => r.pairFailures))).toBeLessThan(rules.userIp.failures);
    // An earlier lift (a clock behind) does not move it back.
    await liftLockout(redis, prefix(), 'user_ip', `skewed|${ip}`, { now: now - 3_600_000 });
    expect(await redis.get(mark)).toBe(String(now + 120_006));
    expect((await count('skewed', ip, [{ id: randomUUID(), at: now + 120_010 }]))[0]).toMatchObject({
      pairFailures: 1,
    });
  });

  it('keeps the failures read again out of the streak, even once the reset is gone', async () => {
    const ip = '198.51.100.52';
    const now = Date.now();
    const failures = Array.from({ length: 30 }, (_, i) => ({ id: randomUUID(), at: now - 60_000 + i }));
    expect((await count('forgotten', ip, failures)).at(-1)).toMatchObject({ streak: 30 });
    await liftLockout(redis, prefix(), 'user', 'forgotten', { now });
    const again = await count('forgotten', ip, failures);
    expect(again.map((r) => r.streak)).toEqual(failures.map(() => 0));
    // The reset expires before the streak does (the streak lives on with newer failures).
    await redis.del(userKey('forgotten', 'reset'));
    expect((await count('forgotten', ip, [{ id: randomUUID(), at: now + 1 }]))[0]).toMatchObject({
      streak: 1,
    });
  });
});
