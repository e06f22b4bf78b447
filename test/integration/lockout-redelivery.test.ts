// At-least-once delivery, exactly-once effect: failures the detector reads twice (its
// effect done, then a crash before the commit) count once, and what it announces has the
// same ids the second time.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEvent, hashSessionToken, type TopicRole } from '@twofold/contracts';
import type { EventProducer } from '@twofold/kafka';
import { resolveLockoutRules } from '@twofold/lockout';
import { createRedis, waitForRedis, type Redis } from '@twofold/redis';
import { readLockState } from '@twofold/state';
import { buildLockoutDetector } from '../../services/lockout-detector/src/lockout-detector.js';
import { eventually, isolated, type Isolated } from '../support/stack.js';
import { detectorCaughtUp } from './lockout-support.js';
import { readTopic } from '../support/topic-reader.js';

const rules = resolveLockoutRules({ userIp: { lockSeconds: 600, maxLockSeconds: 600 } });
let world: Isolated;
let redis: Redis;
let security: Awaited<ReturnType<typeof readTopic>>;
const groupId = () => `${world.config.kafka.groupPrefix}twofold-lockout-detector`;

beforeAll(async () => {
  world = await isolated('lockout-redelivery');
  redis = createRedis(world.config.redis.url, 'state');
  await waitForRedis(redis);
  security = await readTopic(world.kafka, world.topics.security);
});

afterAll(async () => {
  await security?.stop();
  const keys = await redis.keys(`${world.config.redis.keyPrefix}*`);
  if (keys.length > 0) await redis.del(...keys);
  await redis.quit();
  await world?.cleanup();
});

/** The world's producer, failing the first publish to the security topic: a crash after the effect. */
function crashingOnce(producer: EventProducer): EventProducer & { crashed: boolean } {
  const wrapper = {
    ...producer,
    crashed: false,
    topics: producer.topics,
    async publish(role: TopicRole, events: Parameters<EventProducer['publish']>[1]) {
      if (role === 'security' && !wrapper.crashed) {
        wrapper.crashed = true;
        throw new Error('injected crash: counted and imposed, not yet announced or committed');
      }
      return producer.publish(role, events);
    },
  };
  return wrapper;
}

function detectorWith(producer: EventProducer) {
  return buildLockoutDetector({
    kafka: world.kafka,
    producer,
    redis,
    redisUrl: world.config.redis.url,
    logger: world.logger,
    metrics: world.metrics,
    groupId: groupId(),
    keyPrefix: world.config.redis.keyPrefix,
    rules,
  });
}

const caughtUp = () => detectorCaughtUp(world, groupId());

const userKey = (username: string, sub: string) => `${world.config.redis.keyPrefix}lo:{u:${username}}:${sub}`;
const imposedIds = () =>
  security
    .json<{ id: string; type: string }>()
    .filter((e) => e.type === 'twofold.lockout.imposed')
    .map((e) => e.id);
const userLocksOf = (username: string) =>
  security
    .json<{ id: string; type: string; time: string; data: Record<string, unknown> }>()
    .filter(
      (e) => e.type === 'twofold.lockout.imposed' && e.data['scope'] === 'user' && e.data['key'] === username,
    );

const failed = (username: string, ip: string) =>
  createEvent('twofold.login.failed', 'app/jira', username, { appId: 'jira', ip, reason: 'bad_password' });

/** A complete sign-in (primary login, then the code verified): the IP's network is known-good. */
async function signIn(username: string, ip: string) {
  const session = hashSessionToken(randomUUID());
  await world.producer.publish('login', [
    createEvent('twofold.login.succeeded', 'app/jira', username, {
      appId: 'jira',
      session,
      method: 'password',
      ip,
    }),
  ]);
  await world.producer.publish('secondFactor', [
    createEvent('twofold.2fa.verified', 'service/api', username, { appId: 'jira', session, method: 'totp' }),
  ]);
}

/** Crash before any commit: the group starts over from the first offset. */
async function replayFromTheStart() {
  const admin = world.kafka.admin();
  await admin.connect();
  for (const topic of [world.topics.login, world.topics.secondFactor]) {
    await admin.resetOffsets({ groupId: groupId(), topic, earliest: true });
  }
  await admin.disconnect();
}

describe('redelivery', () => {
  it('counts failures read twice once: after a crash before the commit, and after a replay of the topic', async () => {
    const ip = '198.51.100.30';
    const failures = Array.from({ length: 7 }, () =>
      createEvent('twofold.login.failed', 'app/jira', 'twice', { appId: 'jira', ip, reason: 'bad_password' }),
    );
    const crashing = crashingOnce(world.producer);
    const first = detectorWith(crashing);
    await first.start();
    await world.producer.publish('login', failures);

    // The first attempt counts and imposes, then "crashes"; the runner retries the batch.
    const announced = await eventually(
      async () => (imposedIds().length > 0 ? imposedIds() : undefined),
      30_000,
      'the lockout announced after the retry',
    );
    expect(crashing.crashed).toBe(true);
    await caughtUp();
    expect(await redis.zcard(userKey('twice', 'streak'))).toBe(7);
    expect(await redis.zcard(userKey('twice', `pair:${ip}`))).toBe(7);
    const lock = (await readLockState(redis, world.config.redis.keyPrefix, 'twice', ip)).applied[0]!;
    expect(lock).toMatchObject({ scope: 'user_ip', failures: 5, level: 1 });
    expect(announced).toHaveLength(1);
    await first.stop();

    await replayFromTheStart();
    const second = detectorWith(world.producer);
    await second.start();
    await caughtUp();
    await second.stop();

    expect(await redis.zcard(userKey('twice', 'streak'))).toBe(7);
    expect(await redis.zcard(userKey('twice', `pair:${ip}`))).toBe(7);
    const network = `${world.config.redis.keyPrefix}lo:{n:198.51.100.0/24}`;
    expect(await redis.zrange(`${network}:ipusers:${ip}`, 0, -1)).toEqual(['twice']);
    // Same lockout (not a second level), announced under the same id if at all.
    expect((await readLockState(redis, world.config.redis.keyPrefix, 'twice', ip)).applied[0]).toEqual(lock);
    expect(new Set(imposedIds())).toEqual(new Set(announced));
    // The replay announces it again (its cause was read again), as it was: the same time
    // too, so the audit (unique by time and id) keeps one row.
    const imposed = security
      .json<{ id: string; type: string; time: string; data: unknown }>()
      .filter((e) => e.type === 'twofold.lockout.imposed');
    expect(imposed.length).toBeGreaterThanOrEqual(2);
    for (const event of imposed) expect(event).toEqual(imposed[0]);
    const counted = await world.metrics.registry.getSingleMetric('twofold_lockout_failures_total')!.get();
    const by = (outcome: string) => counted.values.find((v) => v.labels['outcome'] === outcome)?.value;
    expect(by('counted')).toBe(7);
    expect(by('duplicate')).toBeGreaterThanOrEqual(7);
  });

  it('announces a widening again, as it was, when the failure that widened the lock is read twice', async () => {
    const home = '192.0.2.40';
    const elsewhere = '198.51.100.40';
    // Known at home, then the NIST bound from elsewhere: a user lock that spares home.
    const setup = detectorWith(world.producer);
    await setup.start();
    await signIn('widened', home);
    await eventually(
      async () =>
        (await readLockState(redis, world.config.redis.keyPrefix, 'widened', home)).knownNetwork
          ? true
          : undefined,
      20_000,
      'home known-good',
    );
    await world.producer.publish(
      'login',
      Array.from({ length: rules.hardLock.consecutiveFailures }, () => failed('widened', elsewhere)),
    );
    const lock = await eventually(async () => userLocksOf('widened')[0], 30_000, 'the user lock');
    expect(lock.data).toMatchObject({ sparesKnownNetworks: true });
    // The widening is announced under an id of its own (the lock's id and the new rule).
    const wideningsOf = () => userLocksOf('widened').filter((e) => e.id !== lock.id);
    await caughtUp();
    await setup.stop();

    // Failures from home too: the lock is widened, then a "crash" before it is announced.
    const crashing = crashingOnce(world.producer);
    const first = detectorWith(crashing);
    await first.start();
    await world.producer.publish(
      'login',
      Array.from({ length: rules.hardLock.knownNetworkFailures }, () => failed('widened', home)),
    );
    await caughtUp();
    await first.stop();
    expect(crashing.crashed).toBe(true);
    expect(
      (await readLockState(redis, world.config.redis.keyPrefix, 'widened', home)).userLock,
    ).not.toBeNull();
    // The retry announces the widening all the same, timed when it was widened.
    const widenedAt = await redis.hget(userKey('widened', 'lock'), 'widenedAt');
    const widened = wideningsOf();
    expect(widened).toHaveLength(1);
    expect(widened[0]!.data).toMatchObject({
      rule: 'consecutive_failures_known_networks',
      sparesKnownNetworks: false,
      lockId: lock.data['lockId'],
    });
    expect(Date.parse(widened[0]!.time)).toBe(Number(widenedAt));

    // A replay of the topic announces it again, identical (same id, same time).
    await replayFromTheStart();
    const second = detectorWith(world.producer);
    await second.start();
    await caughtUp();
    await second.stop();
    const again = wideningsOf();
    expect(again.length).toBeGreaterThanOrEqual(2);
    for (const event of again) expect(event).toEqual(widened[0]);
    // And the lock as it was imposed, again as it was first announced (not as widened since).
    const imposedAgain = userLocksOf('widened').filter((e) => e.id === lock.id);
    expect(imposedAgain.length).toBeGreaterThanOrEqual(2);
    for (const event of imposedAgain) expect(event).toEqual(lock);
  });
});
