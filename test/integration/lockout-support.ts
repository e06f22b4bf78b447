// Shared by the lockout integration tests.
import { createEvent } from '@twofold/contracts';
import { groupLag } from '@twofold/kafka';
import type { LockoutRules } from '@twofold/lockout';
import { createRedis, waitForRedis, type Redis } from '@twofold/redis';
import { lockoutSourceOf, type UserFailureCounts } from '@twofold/state';
import {
  buildLockoutDetector,
  type LockoutDetector,
} from '../../services/lockout-detector/src/lockout-detector.js';
import { deleteRedisKeys, eventually, isolated, type Isolated } from '../support/stack.js';
import { readTopic } from '../support/topic-reader.js';

/** Waits until the detector's group has committed every login and 2fa event produced so far. */
export async function detectorCaughtUp(world: Isolated, groupId: string, timeoutMs = 60_000): Promise<void> {
  await eventually(
    async () =>
      (await groupLag(world.kafka, groupId, [world.topics.login, world.topics.secondFactor])) === 0
        ? true
        : undefined,
    timeoutMs,
    'the detector to catch up',
  );
}

/** An isolated world with a real lockout detector on it, its Redis client, and the security topic read. */
export interface DetectorWorld {
  world: Isolated;
  redis: Redis;
  detector: LockoutDetector;
  security: Awaited<ReturnType<typeof readTopic>>;
  groupId: string;
  prefix: string;
  /** Stops the detector and the reader, removes the world's Redis keys and topics. */
  stop(): Promise<void>;
}

export async function startDetectorWorld(
  name: string,
  rules: LockoutRules,
  options: { background?: boolean } = {},
): Promise<DetectorWorld> {
  const world = await isolated(name);
  const redis = createRedis(world.config.redis.url, 'state', { commandTimeout: 5_000 });
  await waitForRedis(redis);
  const groupId = `${world.config.kafka.groupPrefix}twofold-lockout-detector`;
  const prefix = world.config.redis.keyPrefix;
  const detector = buildLockoutDetector({
    kafka: world.kafka,
    producer: world.producer,
    redis,
    redisUrl: world.config.redis.url,
    logger: world.logger,
    metrics: world.metrics,
    groupId,
    keyPrefix: prefix,
    rules,
    ...options,
  });
  await detector.start();
  const security = await readTopic(world.kafka, world.topics.security);
  return {
    world,
    redis,
    detector,
    security,
    groupId,
    prefix,
    async stop() {
      await detector.stop();
      await security.stop();
      await deleteRedisKeys(redis, `${prefix}*`);
      await redis.quit();
      await world.cleanup();
    },
  };
}

/** A `login.failed` (bad password) from jira, stamped `time`. */
export const failedLogin = (username: string, ip: string, time: Date) =>
  createEvent(
    'twofold.login.failed',
    'app/jira',
    username,
    { appId: 'jira', ip, reason: 'bad_password' },
    { time },
  );

/** Counts failures of one user from one IP straight in the detector's store; the replies in order. */
export async function countInStore(
  detector: LockoutDetector,
  username: string,
  ip: string,
  failures: readonly { id: string; at: number }[],
): Promise<UserFailureCounts[]> {
  const { network } = lockoutSourceOf(ip)!;
  const counts = await detector.store.countBatch({
    users: new Map([[username, failures.map((f) => ({ kind: 'failure' as const, ...f, ip, network }))]]),
    networks: new Map([[network, failures.map((f) => ({ ...f, ip, username }))]]),
    spray: [],
    now: Date.now(),
  });
  return counts.users.get(username)! as UserFailureCounts[];
}

/**
 * Failures of `user` that cross the NIST bound and the many-sources rule but no (user, IP)
 * one: one every 4 minutes over 7 hours, from 11 IPs (`<net>.<i>.9`, in 11 networks) in turn,
 * so never 5 of one IP in 15 minutes, but 10 sources within the hour and 100 in a row.
 */
export function nistCrossing(user: string, net: string) {
  const ips = Array.from({ length: 11 }, (_, i) => `${net}.${i}.9`);
  const start = Date.now() - 105 * 4 * 60_000;
  const failures = Array.from({ length: 105 }, (_, i) =>
    failedLogin(user, ips[i % ips.length]!, new Date(start + i * 4 * 60_000)),
  );
  return { ips, failures };
}
