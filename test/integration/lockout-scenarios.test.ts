// Issue 4 through real Kafka and Redis: the lockout detector built in-process in an
// isolated world, events produced the way apps (and the api) produce them, lockout state
// read the way the verifier reads it.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import Fastify from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { createEvent, hashSessionToken, type AnyTwofoldEvent, type TopicRole } from '@twofold/contracts';
import { resolveLockoutRules } from '@twofold/lockout';
import type { Redis } from '@twofold/redis';
import { readLockState } from '@twofold/state';
import type { AppsRepository } from '@twofold/store';
import { createAuthenticator } from '../../services/api/src/auth.js';
import { installProblemHandlers } from '../../services/api/src/problem.js';
import { adminLockoutsRoute } from '../../services/api/src/routes/admin-lockouts.route.js';
import type { LockoutDetector } from '../../services/lockout-detector/src/lockout-detector.js';
import { eventually, type Isolated } from '../support/stack.js';
import { detectorCaughtUp, startDetectorWorld, type DetectorWorld } from './lockout-support.js';
import { readTopic } from '../support/topic-reader.js';

// Defaults, except a (user, IP) lock of 1 s doubling to 4 s so expiry is seen in a test.
const rules = resolveLockoutRules({
  userIp: { lockSeconds: 1, maxLockSeconds: 4 },
  spray: { evaluateEverySeconds: 0.25 },
});

type Security = {
  id: string;
  type: string;
  time: string;
  subject: string;
  data: Record<string, unknown> & { scope?: string; key?: string; rule?: string; kind?: string; by?: string };
};

let started: DetectorWorld;
let world: Isolated;
let redis: Redis;
let detector: LockoutDetector;
let security: DetectorWorld['security'];
let admin: Awaited<ReturnType<typeof readTopic>>;
const ADMIN_KEY = 'test-admin-key-lockouts';

beforeAll(async () => {
  started = await startDetectorWorld('lockout', rules);
  ({ world, redis, detector, security } = started);
  admin = await readTopic(world.kafka, world.topics.admin);
});

afterAll(async () => {
  await admin?.stop();
  await started?.stop();
});

const prefix = () => world.config.redis.keyPrefix;
const lockState = (username: string, ip: string) => readLockState(redis, prefix(), username, ip);
const securityEvents = () => security.json<Security>();
const imposed = (filter: (e: Security) => boolean) =>
  securityEvents().filter((e) => e.type === 'twofold.lockout.imposed' && filter(e));

const failed = (
  username: string,
  ip: string,
  time?: Date,
  reason: 'bad_password' | 'unknown_user' = 'bad_password',
) =>
  createEvent(
    'twofold.login.failed',
    'app/jira',
    username,
    { appId: 'jira', ip, reason },
    time ? { time } : {},
  );

async function publish(role: TopicRole, events: readonly AnyTwofoldEvent[]) {
  for (let i = 0; i < events.length; i += 2000) await world.producer.publish(role, events.slice(i, i + 2000));
}

/** A complete sign-in as the app (primary login) and the api (code verified) announce it. */
async function signIn(username: string, ip: string, time = new Date()) {
  const session = hashSessionToken(randomUUID());
  await publish('login', [
    createEvent(
      'twofold.login.succeeded',
      'app/jira',
      username,
      { appId: 'jira', session, method: 'password', ip },
      { time },
    ),
  ]);
  await publish('secondFactor', [
    createEvent(
      'twofold.2fa.verified',
      'service/api',
      username,
      { appId: 'jira', session, method: 'totp' },
      { time },
    ),
  ]);
}

async function knownAt(username: string, ip: string) {
  await eventually(
    async () => ((await lockState(username, ip)).knownNetwork ? true : undefined),
    20_000,
    `${username} known at ${ip}`,
  );
}

const caughtUp = () => detectorCaughtUp(world, started.groupId);

/** Consecutive failures: those after the last completed sign-in. */
const streakOf = async (username: string) => {
  const base = `${prefix()}lo:{u:${username}}`;
  return redis.zcount(`${base}:streak`, `(${(await redis.get(`${base}:reset`)) ?? 0}`, '+inf');
};

describe('lockout detector scenarios', () => {
  it('brute force on one account from one IP: the pair backs off at 5, the user locks at the NIST bound', async () => {
    const attacker = '198.51.100.10';
    await publish(
      'login',
      Array.from({ length: 100 }, () => failed('bf-target', attacker)),
    );
    const pair = await eventually(
      async () => imposed((e) => e.data.scope === 'user_ip' && e.data.key === `bf-target|${attacker}`)[0],
      30_000,
      'the (user, IP) lock',
    );
    expect(pair.data).toMatchObject({ rule: 'user_ip_backoff', failures: 5, level: 1, mode: 'deny' });
    expect(pair.subject).toBe('bf-target');
    const user = await eventually(
      async () => imposed((e) => e.data.scope === 'user' && e.data.key === 'bf-target')[0],
      30_000,
      'the user lock',
    );
    expect(user.data).toMatchObject({
      rule: 'consecutive_failures',
      failures: 100,
      mode: 'deny',
      sparesKnownNetworks: true,
    });
    expect(Date.parse(user.data['until'] as string) - Date.now()).toBeGreaterThan(3_500_000);
    // Never signed in anywhere: no network is spared.
    expect((await lockState('bf-target', '192.0.2.200')).userLock).toEqual({ until: user.data['until'] });
    // One source, one account: not an attack of many sources (no force, no attack event).
    expect((await lockState('bf-target', attacker)).forceSecondFactor).toBe(false);
    expect(
      securityEvents().filter((e) => e.type === 'twofold.attack.detected' && e.data.key === 'bf-target'),
    ).toEqual([]);
  });

  it('progressive backoff: a lock lifts at expiry (BullMQ), the next one lasts twice as long', async () => {
    const ip = '198.51.100.11';
    await publish(
      'login',
      Array.from({ length: 5 }, () => failed('backoff', ip)),
    );
    const first = await eventually(
      async () => imposed((e) => e.data.key === `backoff|${ip}`)[0],
      30_000,
      'the first lock',
    );
    expect(first.data).toMatchObject({ level: 1, failures: 5 });
    expect((await lockState('backoff', ip)).userIpLock).toEqual({ until: first.data['until'] });
    const lifted = await eventually(
      async () =>
        securityEvents().find((e) => e.type === 'twofold.lockout.lifted' && e.data.key === `backoff|${ip}`),
      15_000,
      'the lift at expiry',
    );
    expect(lifted.data).toMatchObject({ scope: 'user_ip', by: 'expiry', lockId: first.data['lockId'] });
    // Timed at its end, not when the job ran: a retried job announces the very same event.
    expect(lifted.time).toBe(first.data['until']);
    expect((await lockState('backoff', ip)).userIpLock).toBeNull();

    await publish('login', [failed('backoff', ip)]);
    const second = await eventually(
      async () => imposed((e) => e.data.key === `backoff|${ip}` && e.data['level'] === 2)[0],
      30_000,
      'the second lock',
    );
    const lasting = Date.parse(second.data['until'] as string) - Date.parse(second.time);
    expect(lasting).toBe(2_000);
  });

  it('credential stuffing: one IP, 500 users → the IP and its /24 are blocked, users are not; colleagues behind it still sign in', async () => {
    const stuffer = '203.0.113.66';
    await signIn('office-carol', '203.0.113.5');
    await knownAt('office-carol', '203.0.113.5');
    // A combo list: most names have no account here (unknown_user), some do.
    await publish(
      'login',
      Array.from({ length: 500 }, (_, i) =>
        failed(`stuffed-${i}`, stuffer, undefined, i % 5 === 0 ? 'bad_password' : 'unknown_user'),
      ),
    );
    const ipBlock = await eventually(
      async () => imposed((e) => e.data.scope === 'ip' && e.data.key === stuffer)[0],
      30_000,
      'the IP block',
    );
    expect(ipBlock.data).toMatchObject({ rule: 'credential_stuffing_ip', mode: 'deny' });
    expect(ipBlock.subject).toBe(stuffer);
    const netBlock = await eventually(
      async () => imposed((e) => e.data.scope === 'ip' && e.data.key === '203.0.113.0/24')[0],
      30_000,
      'the network block',
    );
    expect(netBlock.data).toMatchObject({ rule: 'credential_stuffing_network', failures: 50 });
    const attacks = securityEvents().filter(
      (e) => e.type === 'twofold.attack.detected' && e.data.kind === 'credential_stuffing',
    );
    expect(attacks.map((a) => a.data.key).sort()).toEqual(['203.0.113.0/24', stuffer]);
    expect(attacks.find((a) => a.data.key === stuffer)!.data['evidence']).toMatchObject({
      distinctUsers: 20,
      windowSeconds: 600,
    });
    await caughtUp();

    // From that IP every login is denied, except for users who sign in from that network.
    expect((await lockState('stuffed-7', stuffer)).userIpLock).not.toBeNull();
    expect((await lockState('someone-new', '203.0.113.99')).userIpLock).not.toBeNull();
    expect(await lockState('office-carol', stuffer)).toMatchObject({
      userIpLock: null,
      userLock: null,
      knownNetwork: true,
    });
    // The accounts themselves are not locked: one failure each.
    expect(await lockState('stuffed-7', '192.0.2.77')).toMatchObject({ userLock: null, userIpLock: null });
    expect(imposed((e) => e.data.scope === 'user' && String(e.data.key).startsWith('stuffed-'))).toEqual([]);
    // A name without an account keeps no state past the short windows; an account keeps its streak.
    expect(await redis.pttl(`${prefix()}lo:{u:stuffed-7}:streak`)).toBeLessThanOrEqual(3_600_000);
    expect(await redis.pttl(`${prefix()}lo:{u:stuffed-5}:streak`)).toBeGreaterThan(29 * 86_400_000);
  });

  it('the victim signs in from home while attacked from 30 IPs elsewhere: never locked at home', async () => {
    const home = '192.0.2.10';
    await signIn('victim', home);
    await knownAt('victim', home);
    const attackers = Array.from({ length: 30 }, (_, i) => `100.64.${i}.9`);
    await publish(
      'login',
      attackers.flatMap((ip) => Array.from({ length: 5 }, () => failed('victim', ip))),
    );
    const force = await eventually(
      async () => imposed((e) => e.data.key === 'victim' && e.data['mode'] === 'force_second_factor')[0],
      30_000,
      'the forced second factor',
    );
    expect(force.data).toMatchObject({ scope: 'user', rule: 'many_sources' });
    const attack = securityEvents().find(
      (e) => e.type === 'twofold.attack.detected' && e.data.key === 'victim',
    )!;
    expect(attack.data).toMatchObject({ kind: 'brute_force', evidence: { distinctSources: 10 } });
    const hard = await eventually(
      async () => imposed((e) => e.data.key === 'victim' && e.data['mode'] === 'deny')[0],
      30_000,
      'the NIST lock',
    );
    expect(hard.data).toMatchObject({ rule: 'consecutive_failures', sparesKnownNetworks: true });

    // At home the victim mistypes twice, then signs in.
    await publish('login', [failed('victim', home), failed('victim', home)]);
    await signIn('victim', home);
    await caughtUp();
    expect(await lockState('victim', home)).toMatchObject({
      userLock: null,
      userIpLock: null,
      forceSecondFactor: true,
      knownNetwork: true,
    });
    expect(await lockState('victim', '192.0.2.11')).toMatchObject({ userLock: null }); // same /24
    // Elsewhere the account is locked, and the attackers' pairs back off.
    expect((await lockState('victim', attackers[3]!)).userLock).toEqual({ until: hard.data['until'] });
    expect((await lockState('victim', '100.99.0.1')).userLock).not.toBeNull();
    expect(imposed((e) => e.data.scope === 'user_ip' && e.data.key === `victim|${home}`)).toEqual([]);
  });

  it('a real user who mistypes twice and then succeeds, again and again, is never locked', async () => {
    const ip = '192.0.2.50';
    for (let round = 0; round < 30; round++) {
      await publish('login', [failed('typist', ip), failed('typist', ip)]);
      await signIn('typist', ip);
      if (round === 0) await knownAt('typist', ip);
    }
    await caughtUp();
    expect(await lockState('typist', ip)).toMatchObject({
      userLock: null,
      userIpLock: null,
      forceSecondFactor: false,
    });
    expect(imposed((e) => String(e.data.key).startsWith('typist'))).toEqual([]);
    // Codes and passwords travel on two topics and may be read in any order; a sign-in
    // resets the failures before it in time, however late they are read.
    expect(await streakOf('typist')).toBe(0);
  });

  it('101 consecutive failures spread over seven hours still stop at the NIST bound; a success resets the count', async () => {
    const ip = '198.51.100.77';
    const start = Date.now() - 101 * 4 * 60_000;
    // One every 4 minutes: never 5 in the 15-minute (user, IP) window.
    await publish(
      'login',
      Array.from({ length: 101 }, (_, i) => failed('slow', ip, new Date(start + i * 4 * 60_000))),
    );
    const lock = await eventually(
      async () => imposed((e) => e.data.key === 'slow')[0],
      30_000,
      'the NIST lock',
    );
    expect(lock.data).toMatchObject({ scope: 'user', rule: 'consecutive_failures', failures: 100 });
    await caughtUp();
    expect(imposed((e) => String(e.data.key).startsWith('slow'))).toHaveLength(1);
    expect(await streakOf('slow')).toBe(101);

    // 60 failures, a completed sign-in, 60 more: never 100 in a row.
    const ip2 = '198.51.100.78';
    const from = Date.now() - 250 * 60_000;
    await publish(
      'login',
      Array.from({ length: 60 }, (_, i) => failed('resets', ip2, new Date(from + i * 2 * 60_000))),
    );
    await signIn('resets', '192.0.2.60', new Date(from + 121 * 60_000));
    await eventually(async () => ((await streakOf('resets')) === 0 ? true : undefined), 20_000, 'the reset');
    await publish(
      'login',
      Array.from({ length: 60 }, (_, i) => failed('resets', ip2, new Date(from + (122 + i * 2) * 60_000))),
    );
    await caughtUp();
    expect(await streakOf('resets')).toBe(60);
    expect(imposed((e) => e.data.scope === 'user' && e.data.key === 'resets')).toEqual([]);
  });

  it('botnet spray: 200 IPs × 500 users × 1 attempt → password_spraying detected, no real user locked at home', async () => {
    const users = Array.from({ length: 500 }, (_, u) => `spray-${u}`);
    const homes = new Map(users.slice(0, 20).map((u, i) => [u, `172.16.${i}.5`]));
    for (const [user, home] of homes) await signIn(user, home);
    for (const [user, home] of homes) await knownAt(user, home);
    const bots = Array.from({ length: 200 }, (_, i) => `100.80.${i}.33`);
    const started = Date.now();
    // The 20 with a home are accounts; the other names have none here (unknown_user).
    for (const ip of bots)
      await publish(
        'login',
        users.map((u) => failed(u, ip, undefined, homes.has(u) ? 'bad_password' : 'unknown_user')),
      );
    const spray = await eventually(
      async () =>
        securityEvents().find(
          (e) => e.type === 'twofold.attack.detected' && e.data.kind === 'password_spraying',
        ),
      120_000,
      'password spraying',
    );
    expect(spray.subject).toBe('global');
    expect(spray.data['evidence']).toMatchObject({ windowSeconds: 600 });
    const evidence = spray.data['evidence'] as Record<string, number>;
    expect(evidence['failures']).toBeGreaterThanOrEqual(300);
    expect(evidence['distinctIps']).toBeGreaterThanOrEqual(20);
    expect(evidence['failuresPerPair']).toBeLessThanOrEqual(rules.spray.maxFailuresPerPair);
    await caughtUp();
    const seconds = (Date.now() - started) / 1000;
    console.info(`botnet: 100,000 failures produced and counted in ${seconds.toFixed(1)} s`);
    const final = await detector.store.sprayWindow(Date.now());
    expect(final.failures).toBeGreaterThan(99_000); // HyperLogLog: ±1%
    expect(final.distinctUsers).toBeGreaterThan(495);
    expect(final.distinctIps).toBeGreaterThan(196);

    for (const [user, home] of homes) {
      expect(await lockState(user, home), user).toMatchObject({
        userLock: null,
        userIpLock: null,
        forceSecondFactor: true,
      });
    }
    // Elsewhere the NIST bound holds (200 failures each); the bots are blocked.
    const elsewhere = await lockState('spray-3', bots[7]!);
    expect(elsewhere.userLock).not.toBeNull();
    expect(elsewhere.userIpLock).not.toBeNull();
    expect(elsewhere.applied.find((l) => l.scope === 'user' && l.mode === 'deny')).toMatchObject({
      sparesKnownNetworks: true,
    });
    expect(imposed((e) => e.data.scope === 'ip' && String(e.data.key).startsWith('100.80.'))).toHaveLength(
      400,
    );
  }, 240_000);

  it('an admin lists and lifts lockouts; lifting publishes lockout.lifted (by admin) and twofold.admin.unlock', async () => {
    const app = Fastify().withTypeProvider<TypeBoxTypeProvider>();
    installProblemHandlers(app);
    const auth = createAuthenticator({ apps: {} as AppsRepository, adminKey: ADMIN_KEY });
    await app.register(adminLockoutsRoute({ auth, redis, keyPrefix: prefix(), producer: world.producer }));
    const call = (method: 'GET' | 'DELETE', url: string) =>
      app.inject({ method, url, headers: { authorization: `Bearer ${ADMIN_KEY}` } });

    const list = await call('GET', '/v1/admin/lockouts?limit=1000');
    expect(list.statusCode).toBe(200);
    const lockouts = list.json<{
      lockouts: { scope: string; key: string; rule: string; until: string | null }[];
    }>().lockouts;
    expect(lockouts).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ scope: 'ip', key: '203.0.113.66', rule: 'credential_stuffing_ip' }),
        expect.objectContaining({ scope: 'user', key: 'victim', rule: 'many_sources' }),
        expect.objectContaining({ scope: 'user', key: 'bf-target', rule: 'consecutive_failures' }),
      ]),
    );
    const untils = lockouts.map((l) => Date.parse(l.until!));
    expect(untils).toEqual([...untils].sort((a, b) => a - b));
    expect((await app.inject({ method: 'GET', url: '/v1/admin/lockouts' })).statusCode).toBe(401);

    const ip = await call('DELETE', '/v1/admin/lockouts/ip/203.0.113.66');
    expect(ip.statusCode, ip.body).toBe(200);
    expect(ip.json()).toMatchObject({ lifted: [{ scope: 'ip', key: '203.0.113.66' }] });
    // Still blocked through its network, until that is lifted too.
    expect((await lockState('stuffed-1', '203.0.113.66')).userIpLock).not.toBeNull();
    expect((await call('DELETE', '/v1/admin/lockouts/ip/203.0.113.0%2F24')).statusCode).toBe(200);
    expect((await lockState('stuffed-1', '203.0.113.66')).userIpLock).toBeNull();
    expect((await call('DELETE', '/v1/admin/lockouts/ip/203.0.113.66')).statusCode).toBe(404);
    expect((await call('DELETE', '/v1/admin/lockouts/ip/not-an-ip')).statusCode).toBe(400);
    expect((await call('DELETE', '/v1/admin/lockouts/ip/203.0.113.0%2F16')).statusCode).toBe(400);

    const user = await call('DELETE', '/v1/admin/lockouts/user/BF-Target');
    expect(user.json<{ lifted: unknown[] }>().lifted).toHaveLength(1);
    expect(await lockState('bf-target', '198.51.100.10')).toMatchObject({ userLock: null });
    expect(await streakOf('bf-target')).toBe(0); // the streak is reset
    const pairKey = encodeURIComponent('victim|100.64.3.9');
    expect([200, 404]).toContain((await call('DELETE', `/v1/admin/lockouts/user_ip/${pairKey}`)).statusCode);

    const liftedByAdmin = await eventually(
      async () => {
        const found = securityEvents().filter(
          (e) => e.type === 'twofold.lockout.lifted' && e.data.by === 'admin',
        );
        return found.length >= 3 ? found : undefined;
      },
      20_000,
      'lockout.lifted by admin',
    );
    expect(liftedByAdmin.map((e) => e.data.key)).toEqual(
      expect.arrayContaining(['203.0.113.66', '203.0.113.0/24', 'bf-target']),
    );
    const unlocks = await eventually(
      async () => {
        const found = admin
          .json<{ type: string; data: { scope: string; key: string } }>()
          .filter((e) => e.type === 'twofold.admin.unlock');
        return found.length >= 3 ? found : undefined;
      },
      20_000,
      'twofold.admin.unlock',
    );
    expect(unlocks[0]!.data).toMatchObject({ scope: 'ip', key: '203.0.113.66' });
    await app.close();
  });
});
