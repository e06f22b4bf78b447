// Event times the broadcaster cannot trust, and a session lifetime that changes, in real Redis
// and through real Kafka: a logout, lockout or verification stamped centuries ahead must
// neither keep a record in Redis until then nor block what really comes after it; and a
// lifetime raised after a logout must not let a late verification of that session count again.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEvent, hashSessionToken, type TwofoldEvent } from '@twofold/contracts';
import { createRedis, waitForRedis, type Redis } from '@twofold/redis';
import {
  applySessionChanges,
  readSession,
  sessionKey,
  userRevokedKey,
  userSessionHashes,
  type SessionApplyOptions,
  type SessionChange,
} from '@twofold/state';
import { buildSessionBroadcaster } from '../../services/session-broadcaster/src/session-broadcaster.js';
import { deleteRedisKeys, eventually, stackEnv } from '../support/stack.js';
import { readTopic } from '../support/topic-reader.js';
import { createSessionWorld, type SessionWorld } from './session-world.js';

/** A clock gone wrong: 2500-01-01. */
const FAR = Date.UTC(2500, 0, 1);
const HOUR = 3_600;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const newSession = () => hashSessionToken(randomUUID());

describe('session state in Redis', () => {
  const prefix = `t:session-clock-${randomUUID().slice(0, 8)}:`;
  let redis: Redis;
  beforeAll(async () => {
    redis = createRedis(stackEnv()['REDIS_URL']!, 'state');
    await waitForRedis(redis);
  });
  afterAll(async () => {
    await deleteRedisKeys(redis, `${prefix}*`);
    await redis.quit();
  });

  const apply = (changes: SessionChange[], options: SessionApplyOptions) =>
    applySessionChanges(redis, prefix, changes, options);
  const validate = (session: string, username: string, at: number): SessionChange => ({
    kind: 'validate',
    session,
    username,
    appId: 'jira',
    at,
    eventId: randomUUID(),
  });
  const logout = (session: string, at: number): SessionChange => ({
    kind: 'revoke',
    session,
    reason: 'logout',
    at,
    eventId: randomUUID(),
    username: 'alice',
  });

  describe('event times far ahead of the broadcaster’s clock', () => {
    // The longest any record may live from now: a verification counts for at most a day,
    // plus the skew allowed between clocks.
    const options = { ttlSeconds: 8 * HOUR, clockSkewSeconds: 300, maxVerificationAgeSeconds: 24 * HOUR };
    const longestMs = (24 * HOUR + 300) * 1000;

    it('a logout stamped in 2500 ends a verified session now; its record lives a day, not until 2500', async () => {
      const session = newSession();
      await apply([validate(session, 'alice', Date.now())], options);
      const [out] = await apply([logout(session, FAR)], options);
      expect(out).toMatchObject({ outcome: 'applied', announce: true });
      // The revocation is announced at the broadcaster's time, not in 2500.
      expect(out!.version).toBeLessThanOrEqual(Date.now());
      const pttl = await redis.pttl(sessionKey(prefix, session));
      expect(pttl).toBeGreaterThan(longestMs - 60_000);
      expect(pttl).toBeLessThanOrEqual(longestMs);
      // Still a logout: no verification of the dead token counts after it.
      const [again] = await apply([validate(session, 'alice', Date.now() + 1_000)], options);
      expect(again).toMatchObject({ outcome: 'stale', announce: false });
      expect((await readSession(redis, prefix, session)).verified).toBe(false);
    });

    it('a logout stamped in 2500 before any verification: the record is bounded and still refuses the verification', async () => {
      const session = newSession();
      const [out] = await apply([logout(session, FAR)], options);
      expect(out).toMatchObject({ outcome: 'applied', announce: false });
      expect(await redis.pttl(sessionKey(prefix, session))).toBeLessThanOrEqual(longestMs);
      const [late] = await apply([validate(session, 'alice', Date.now() - 1_000)], options);
      expect(late).toMatchObject({ outcome: 'stale', announce: false });
      expect((await readSession(redis, prefix, session)).verified).toBe(false);
    });

    it('a logout of the present keeps its record for a day and the skew, beyond the session lifetime', async () => {
      const session = newSession();
      await apply([logout(session, Date.now())], options);
      expect(await redis.pttl(sessionKey(prefix, session))).toBeGreaterThan(longestMs - 60_000);
    });

    it('a verification stamped in 2500 does not count (it would outlive every lockout until 2500)', async () => {
      const session = newSession();
      const username = `future-${randomUUID()}`;
      const [out] = await apply([validate(session, username, FAR)], options);
      expect(out).toMatchObject({ outcome: 'future', announce: false, username });
      expect(await redis.exists(sessionKey(prefix, session))).toBe(0);
      expect(await userSessionHashes(redis, prefix, username)).toEqual([]);
      expect((await readSession(redis, prefix, session)).verified).toBe(false);
      // The same session verified at a believable time counts.
      const [sane] = await apply([validate(session, username, Date.now())], options);
      expect(sane).toMatchObject({ outcome: 'applied', announce: true });
    });

    it('a verification a little ahead (within the skew) keeps its own time', async () => {
      const session = newSession();
      const at = Date.now() + 60_000;
      const [out] = await apply([validate(session, 'ahead', at)], options);
      expect(out).toMatchObject({ outcome: 'applied', version: at, expiresAtMs: at + 8 * HOUR * 1000 });
      expect((await readSession(redis, prefix, session)).verifiedAt).toBe(new Date(at).toISOString());
    });

    it('a lockout stamped in 2500 revokes the user’s sessions now, and a verification after it counts', async () => {
      const username = `bob-${randomUUID()}`;
      const [before, after] = [newSession(), newSession()];
      await apply([validate(before, username, Date.now())], options);
      const outcomes = await apply(
        [{ kind: 'revoke-user', username, reason: 'lockout', at: FAR, eventId: randomUUID() }],
        options,
      );
      expect(outcomes.map((o) => [o.session, o.outcome, o.announce])).toEqual([[before, 'applied', true]]);
      expect(outcomes[0]!.version).toBeLessThanOrEqual(Date.now());
      expect((await readSession(redis, prefix, before)).verified).toBe(false);
      for (const key of [sessionKey(prefix, before), userRevokedKey(prefix, username)])
        expect(await redis.pttl(key), key).toBeLessThanOrEqual(longestMs);
      // Not blocked until 2500: the user proves the factor again, and it counts.
      const [again] = await apply([validate(after, username, Date.now() + 1)], options);
      expect(again).toMatchObject({ outcome: 'applied', announce: true });
      expect((await readSession(redis, prefix, after)).verified).toBe(true);
    });
  });

  describe('a session lifetime raised after a logout', () => {
    it('a late verification of a logged-out session stays refused, and past the longest verification age it is ignored', async () => {
      // Small numbers stand for 8 h raised to 24 h: the lifetime was 1 s when the session was
      // logged out, a verification counts for at most 2 s, and clocks may differ by 0.2 s.
      const clock = { clockSkewSeconds: 0.2, maxVerificationAgeSeconds: 2 };
      const session = newSession();
      const verified = validate(session, 'carol', Date.now());
      await apply([verified], { ttlSeconds: 1, ...clock });
      await apply([logout(session, Date.now())], { ttlSeconds: 1, ...clock });
      await sleep(1_300); // older than the lifetime that was in force at the logout

      // The lifetime is raised to an hour; the verification comes again (a consumer replay).
      const [late] = await apply([verified], { ttlSeconds: HOUR, ...clock });
      expect(late).toMatchObject({ outcome: 'stale', announce: false });
      expect((await readSession(redis, prefix, session)).verified).toBe(false);

      // Once the logout's record is gone, the verification is older than any may count.
      await eventually(
        async () => ((await redis.exists(sessionKey(prefix, session))) === 0 ? true : undefined),
        5_000,
        'the logout record to expire',
      );
      const [later] = await apply([verified], { ttlSeconds: HOUR, ...clock });
      expect(later).toMatchObject({ outcome: 'expired', announce: false });
      expect((await readSession(redis, prefix, session)).verified).toBe(false);
    });

    it('a raised lifetime still counts for a verification younger than the longest age', async () => {
      const session = newSession();
      const at = Date.now() - 1_500;
      const [out] = await apply([validate(session, 'dora', at)], {
        ttlSeconds: HOUR,
        clockSkewSeconds: 0.2,
        maxVerificationAgeSeconds: 2,
      });
      expect(out).toMatchObject({ outcome: 'applied', expiresAtMs: at + HOUR * 1000 });
    });
  });
});

describe('the broadcaster, through Kafka', () => {
  let w: SessionWorld;
  let topic: Awaited<ReturnType<typeof readTopic>>;
  let broadcaster: ReturnType<typeof buildSessionBroadcaster>;
  /** The lifetime in force, as the admin policy would set it. */
  let ttlSeconds = 8 * HOUR;

  beforeAll(async () => {
    w = await createSessionWorld('session-clock', {
      appIds: ['jira'],
      webhooks: { attempts: 1, backoffMs: 100, timeoutMs: 1_000, concurrency: 2, refreshMs: 500 },
      broadcaster: false,
    });
    topic = await readTopic(w.world.kafka, w.world.topics.session);
    broadcaster = buildSessionBroadcaster({
      kafka: w.world.kafka,
      producer: w.world.producer,
      redis: w.redis,
      logger: w.world.logger,
      metrics: w.world.metrics,
      groupId: `${w.world.config.kafka.groupPrefix}session-broadcaster`,
      keyPrefix: w.world.config.redis.keyPrefix,
      sessionTtlSeconds: () => ttlSeconds,
    });
    await broadcaster.start();
  });
  afterAll(async () => {
    await broadcaster?.stop();
    await topic?.stop();
    await w?.close();
  });

  type Announced = TwofoldEvent<'twofold.session.validated'> | TwofoldEvent<'twofold.session.revoked'>;
  const announced = (session: string, type: Announced['type']) =>
    topic.json<Announced>().filter((e) => e.type === type && e.data.session === session);
  const heard = (session: string, type: Announced['type'], count = 1) =>
    eventually(
      async () => {
        const events = announced(session, type);
        return events.length >= count ? events : undefined;
      },
      15_000,
      `${type} for ${session.slice(0, 8)}`,
    );
  /** A verification of another session of the same user, heard: everything published before it was applied. */
  async function drained(username: string) {
    const { session } = await w.verify({ username, appId: 'jira', token: `marker-${randomUUID()}` });
    await heard(session, 'twofold.session.validated');
  }

  it('a logout stamped in 2500 ends the session in every app now, announced now, with a bounded record', async () => {
    const username = 'erin';
    const token = `crowd-${randomUUID()}`;
    const { session } = await w.verify({ username, appId: 'jira', token });
    await heard(session, 'twofold.session.validated');
    await w.world.producer.publish('login', [
      createEvent(
        'twofold.logout',
        'app/jira',
        username,
        { appId: 'jira', session },
        { time: new Date(FAR) },
      ),
    ]);
    const [revoked] = await heard(session, 'twofold.session.revoked');
    expect(Date.parse(revoked!.time)).toBeLessThanOrEqual(Date.now());
    expect((await w.current('jira', token)).body).toEqual({ verified: false });
    const pttl = await w.redis.pttl(sessionKey(w.world.config.redis.keyPrefix, session));
    expect(pttl).toBeGreaterThan(0);
    expect(pttl).toBeLessThanOrEqual((24 * HOUR + 300) * 1000);
  });

  it('a verification stamped in 2500 is not announced and does not count', async () => {
    const username = 'frank';
    const token = `crowd-${randomUUID()}`;
    const { session } = await w.verify({ username, appId: 'jira', token, time: new Date(FAR) });
    await drained(username);
    expect(announced(session, 'twofold.session.validated')).toEqual([]);
    expect((await w.current('jira', token)).body).toEqual({ verified: false });
  });

  it('after the lifetime is raised, a verification redelivered after its logout’s old lifetime stays refused', async () => {
    ttlSeconds = 2;
    try {
      const username = 'gina';
      const token = `crowd-${randomUUID()}`;
      const session = hashSessionToken(token);
      const verification = createEvent('twofold.2fa.verified', 'service/verifier', username, {
        appId: 'jira',
        session,
        method: 'totp',
      });
      await w.world.producer.publish('secondFactor', [verification]);
      await heard(session, 'twofold.session.validated');
      await w.logout({ username, appId: 'jira', token });
      await heard(session, 'twofold.session.revoked');

      await sleep(2_500); // the lifetime in force at the logout is over
      ttlSeconds = 24 * HOUR; // the admin raises it
      await w.world.producer.publish('secondFactor', [verification]); // redelivered (a replay)
      await drained(username);

      expect((await w.current('jira', token)).body).toEqual({ verified: false });
      expect(announced(session, 'twofold.session.validated')).toHaveLength(1);
    } finally {
      ttlSeconds = 8 * HOUR;
    }
  });
});
