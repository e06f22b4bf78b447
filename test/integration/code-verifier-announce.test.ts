// A verified code counts only once it is announced (the session broadcaster marks the session
// verified from 2fa.verified). When it cannot be announced the answer is "unavailable" (503)
// and the challenge stays, so the user answers it again with the next code; before, the
// challenge was deleted anyway and the user was told to sign in again by a 404.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashSessionToken } from '@twofold/contracts';
import { createEventProducer } from '@twofold/kafka';
import { encryptSecret, generateSecret } from '@twofold/otp';
import type { Redis } from '@twofold/redis';
import { CHALLENGE_MAX_ATTEMPTS, createChallengeStore } from '@twofold/state';
import { createEnrollmentsRepository, type Pool } from '@twofold/store';
import { createCodeVerifier, VerificationError } from '@twofold/verification';
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
  stores = await isolatedWithStores('code-verifier-announce');
  ({ world, redis, pool } = stores);
});

afterAll(() => stores.cleanup());

describe('a verified code that cannot be announced', () => {
  it('is refused as unavailable and leaves the challenge for the next code', async () => {
    const keyRing = keyRingFromEnv(world.env);
    const enrollments = createEnrollmentsRepository(pool);
    const secret = generateSecret();
    await enrollments.activate({
      username: 'dave',
      secretCiphertext: encryptSecret(keyRing, 'dave', secret),
      algorithm: 'SHA1',
      digits: 6,
      period: 30,
      origin: 'generated',
      backupCodeHashes: [],
    });
    const prefix = world.config.redis.keyPrefix;
    const challenges = createChallengeStore(redis, prefix);
    const challenge = await challenges.create({
      username: 'dave',
      appId: 'jira',
      session: hashSessionToken(randomUUID()),
      ip: '192.0.2.10',
      loginEventId: randomUUID(),
    });
    const verifier = (producer: typeof world.producer) =>
      createCodeVerifier({
        challenges,
        enrollments,
        keyRing,
        redis,
        keyPrefix: prefix,
        producer,
        readLock: readLockForVerification(redis, prefix),
        maxAttempts: CHALLENGE_MAX_ATTEMPTS,
      });

    // Kafka out of reach: a producer that never connected refuses to send.
    const unconnected = createEventProducer(world.kafka, { topics: world.topics, logger: world.logger });
    const refused = await verifier(unconnected)
      .verify(challenge.challengeId, await previousStepCode(secret), { appId: 'jira' })
      .catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(VerificationError);
    expect(refused).toMatchObject({ code: 'unavailable', message: expect.stringMatching(/next code/) });
    expect(await challenges.get(challenge.challengeId)).toBeDefined();

    const announced = await readTopic(world.kafka, world.topics.secondFactor);
    const result = await verifier(world.producer).verify(challenge.challengeId, oathtoolTotp(secret), {
      appId: 'jira',
    });
    expect(result).toMatchObject({ verified: true, method: 'totp' });
    expect(await challenges.get(challenge.challengeId)).toBeUndefined();
    const verified = await eventually(
      async () =>
        announced
          .json<{ type: string; subject: string; data: { challengeId: string } }>()
          .find((e) => e.type === 'twofold.2fa.verified'),
      30_000,
      'the verification announced',
    );
    expect(verified).toMatchObject({ subject: 'dave', data: { challengeId: challenge.challengeId } });
    await announced.stop();
  });
});
