// An admin reset is announced before the authenticator is removed. The session broadcaster
// revokes the user's verified sessions on that announcement and the audit records it, so a
// reset that could not be announced must change nothing, and the admin's retry must still
// find the authenticator to reset (before, the row was gone and the retry answered 404).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEventProducer } from '@twofold/kafka';
import { encryptSecret, generateSecret } from '@twofold/otp';
import type { Redis } from '@twofold/redis';
import { createEnrollmentsRepository, type Pool } from '@twofold/store';
import { createEnrollmentService, VerificationError } from '@twofold/verification';
import { keyRingFromEnv } from '../../bench/lib/seed.js';
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
