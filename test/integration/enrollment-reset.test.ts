// An admin reset is announced before the authenticator is removed. The session broadcaster
// revokes the user's verified sessions on that announcement and the audit records it, so a
// reset that could not be announced must change nothing, and the admin's retry must still
// find the authenticator to reset (before, the row was gone and the retry answered 404).
// A retried reset that finds no row still changes the enrollment version, so no replica
// keeps accepting the lost phone's codes from a copy read before the row went.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashSessionToken } from '@twofold/contracts';
import { createEventProducer, type EventProducer } from '@twofold/kafka';
import { encryptSecret, generateSecret } from '@twofold/otp';
import type { Redis } from '@twofold/redis';
import { CHALLENGE_MAX_ATTEMPTS, createChallengeStore } from '@twofold/state';
import { createEnrollmentsRepository, type Pool } from '@twofold/store';
import { createCodeVerifier, createEnrollmentService, VerificationError } from '@twofold/verification';
import { keyRingFromEnv } from '../../bench/lib/seed.js';
import { readLockForVerification } from '../../services/api/src/lock-reader.js';
import { oathtoolTotp, previousStepCode } from '../support/otp.js';
import { eventually, type Isolated } from '../support/stack.js';
import { isolatedWithStores, type WorldWithStores } from '../support/stores.js';
import { readTopic } from '../support/topic-reader.js';

let stores: WorldWithStores;
let world: Isolated;
let redis: Redis;
let pool: Pool;

beforeAll(async () => {
  stores = await isolatedWithStores('enrollment-reset');
  ({ world, redis, pool } = stores);
});

afterAll(() => stores.cleanup());

describe('admin reset of a lost authenticator', () => {
  it('changes nothing when it cannot be announced; the retry resets and announces it', async () => {
    const keyRing = keyRingFromEnv(world.env);
    const enrollments = createEnrollmentsRepository(pool);
    await enrollments.activate({
      username: 'carol',
      secretCiphertext: encryptSecret(keyRing, 'carol', generateSecret()),
      algorithm: 'SHA1',
      digits: 6,
      period: 30,
      origin: 'generated',
      backupCodeHashes: [],
    });
    const service = (producer: typeof world.producer) =>
      createEnrollmentService({
        enrollments,
        keyRing,
        redis,
        keyPrefix: world.config.redis.keyPrefix,
        producer,
      });

    // Kafka out of reach: a producer that never connected refuses to send.
    const unconnected = createEventProducer(world.kafka, { topics: world.topics, logger: world.logger });
    const refused = await service(unconnected)
      .reset('carol', 'admin')
      .catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(VerificationError);
    expect(refused).toMatchObject({
      code: 'unavailable',
      message: expect.stringMatching(/nothing was reset/),
    });
    expect(await enrollments.get('carol')).toBeDefined();

    const secondFactor = await readTopic(world.kafka, world.topics.secondFactor);
    const admin = await readTopic(world.kafka, world.topics.admin);
    expect(await service(world.producer).reset('carol', 'admin')).toBe(true);
    expect(await enrollments.get('carol')).toBeUndefined();
    const announced = await eventually(
      async () => {
        const reset = secondFactor.json<{ type: string; subject: string }>();
        const audit = admin.json<{ type: string; data: { username: string } }>();
        return reset.length > 0 && audit.length > 0 ? { reset, audit } : undefined;
      },
      30_000,
      'the reset announced on the 2fa and admin topics',
    );
    expect(announced.reset).toEqual([
      expect.objectContaining({ type: 'twofold.enrollment.reset', subject: 'carol' }),
    ]);
    expect(announced.audit).toEqual([
      expect.objectContaining({
        type: 'twofold.admin.enrollment_reset',
        data: expect.objectContaining({ username: 'carol' }),
      }),
    ]);
    // Nothing left to reset.
    expect(await service(world.producer).reset('carol', 'admin')).toBe(false);
    await Promise.all([secondFactor.stop(), admin.stop()]);
  });
});

/** This Redis client, except that its `set` number `failing` (counted from 1) fails. */
function failingSet(client: Redis, failing: number): Redis {
  let calls = 0;
  return new Proxy(client, {
    get(target, prop) {
      if (prop === 'set') {
        return (...args: unknown[]) =>
          ++calls === failing
            ? Promise.reject(new Error('Connection is closed.'))
            : (target.set as (...a: unknown[]) => Promise<unknown>)(...args);
      }
      const value = Reflect.get(target, prop, target) as unknown;
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}

describe('a reset retried after its last version change failed', () => {
  it("still changes the version: a replica's copy of the lost authenticator stops working", async () => {
    const keyRing = keyRingFromEnv(world.env);
    const enrollments = createEnrollmentsRepository(pool);
    const prefix = world.config.redis.keyPrefix;
    const secret = generateSecret();
    await enrollments.activate({
      username: 'dana',
      secretCiphertext: encryptSecret(keyRing, 'dana', secret),
      algorithm: 'SHA1',
      digits: 6,
      period: 30,
      origin: 'generated',
      backupCodeHashes: [],
    });
    const challenges = createChallengeStore(redis, prefix);
    const challenge = () =>
      challenges.create({
        username: 'dana',
        appId: 'jira',
        session: hashSessionToken(randomUUID()),
        ip: '192.0.2.20',
        loginEventId: randomUUID(),
      });
    // A replica's code verifier, keeping enrollments in memory under the version it read.
    const replica = createCodeVerifier({
      challenges,
      enrollments,
      keyRing,
      redis,
      keyPrefix: prefix,
      producer: world.producer,
      readLock: readLockForVerification(redis, prefix),
      maxAttempts: CHALLENGE_MAX_ATTEMPTS,
    });
    const service = (client: Redis, producer: EventProducer) =>
      createEnrollmentService({ enrollments, keyRing, redis: client, keyPrefix: prefix, producer });

    // The replica answers a code while the reset is being announced: after the version's
    // first change, before the row goes. Then the change after the DELETE fails.
    const first = await challenge();
    const announcing: EventProducer = {
      ...world.producer,
      publishMany: async (batches) => {
        const answered = await replica.verify(first.challengeId, await previousStepCode(secret));
        expect(answered).toMatchObject({ verified: true });
        await world.producer.publishMany(batches);
      },
    };
    const refused = await service(failingSet(redis, 2), announcing)
      .reset('dana', 'admin')
      .catch((err: unknown) => err);
    expect(refused).toMatchObject({ code: 'unavailable', message: expect.stringMatching(/reset again/) });
    expect(await enrollments.get('dana')).toBeUndefined();
    expect(replica.cache.get('dana', Date.now())).toBeDefined();

    // The admin resets again, as told: nothing left to reset (404), but the version moves.
    expect(await service(redis, world.producer).reset('dana', 'admin')).toBe(false);
    const second = await challenge();
    expect(await replica.verify(second.challengeId, oathtoolTotp(secret))).toMatchObject({
      verified: false,
      reason: 'bad_code',
    });
  });
});
