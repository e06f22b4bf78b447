// Session state in real Redis: readSession, the user index, and the order rule — whatever
// order changes arrive in, however often redelivered and however batched, a session ends
// verified only if its newest validation is newer than every revoke and it was never logged out.
import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashSessionToken } from '@twofold/contracts';
import { createRedis, waitForRedis, type Redis } from '@twofold/redis';
import {
  applySessionChanges,
  readSession,
  revokeUserSessions,
  userSessionHashes,
  userSessionsKey,
  type SessionChange,
} from '@twofold/state';
import { deleteRedisKeys, stackEnv } from '../support/stack.js';

const prefix = `t:session-state-${randomUUID().slice(0, 8)}:`;
const ttlSeconds = 3_600;
let redis: Redis;

beforeAll(async () => {
  redis = createRedis(stackEnv()['REDIS_URL']!, 'state');
  await waitForRedis(redis);
});
afterAll(async () => {
  await deleteRedisKeys(redis, `${prefix}*`);
  await redis.quit();
});

const newSession = () => hashSessionToken(randomUUID());

describe('readSession', () => {
  it('answers verified with who, where and until when, and not verified for unknown, revoked or expired', async () => {
    const session = newSession();
    expect(await readSession(redis, prefix, session)).toEqual({ verified: false });
    const at = Date.now();
    const [outcome] = await applySessionChanges(
      redis,
      prefix,
      [{ kind: 'validate', session, username: 'alice', appId: 'jira', at, eventId: randomUUID() }],
      { ttlSeconds },
    );
    expect(outcome).toMatchObject({ outcome: 'applied', announce: true, username: 'alice' });
    expect(await readSession(redis, prefix, session)).toEqual({
      verified: true,
      username: 'alice',
      appId: 'jira',
      verifiedAt: new Date(at).toISOString(),
      expiresAt: new Date(at + ttlSeconds * 1000).toISOString(),
    });
    // Past its expiry it no longer counts, even before Redis drops the key.
    expect(await readSession(redis, prefix, session, at + ttlSeconds * 1000)).toEqual({ verified: false });
    expect(await redis.pttl(`${prefix}session:{${session}}`)).toBeGreaterThan((ttlSeconds - 5) * 1000);
  });

  it('refuses a raw token where the session hash belongs', async () => {
    await expect(readSession(redis, prefix, 'crowd-token-1234')).rejects.toThrow(/hash/);
  });

  it('does not store a validation whose lifetime is already over', async () => {
    const session = newSession();
    const at = Date.now() - ttlSeconds * 1000 - 1;
    const [outcome] = await applySessionChanges(
      redis,
      prefix,
      [{ kind: 'validate', session, username: 'old', appId: 'jira', at, eventId: randomUUID() }],
      { ttlSeconds },
    );
    expect(outcome).toMatchObject({ outcome: 'expired', announce: false });
    expect(await redis.exists(`${prefix}session:{${session}}`)).toBe(0);
  });
});

describe('revokeUserSessions', () => {
  it('revokes every live session of the user and nobody else’s, announcing only verified ones', async () => {
    const now = Date.now();
    const mine = [newSession(), newSession(), newSession()];
    const theirs = newSession();
    await applySessionChanges(
      redis,
      prefix,
      [
        ...mine.map((session) => ({
          kind: 'validate' as const,
          session,
          username: 'bob',
          appId: 'jira',
          at: now,
          eventId: randomUUID(),
        })),
        {
          kind: 'validate',
          session: theirs,
          username: 'carol',
          appId: 'jira',
          at: now,
          eventId: randomUUID(),
        },
        { kind: 'revoke', session: mine[2]!, reason: 'logout', at: now + 1, eventId: randomUUID() },
      ],
      { ttlSeconds },
    );
    expect((await userSessionHashes(redis, prefix, 'bob')).sort()).toEqual([...mine].sort());
    const eventId = randomUUID();
    const outcomes = await revokeUserSessions(
      redis,
      prefix,
      { username: 'bob', reason: 'lockout', at: now + 10, eventId },
      { ttlSeconds },
    );
    const announced = outcomes.filter((o) => o.announce).map((o) => o.session);
    expect(announced.sort()).toEqual([mine[0]!, mine[1]!].sort());
    for (const session of mine) expect((await readSession(redis, prefix, session)).verified).toBe(false);
    expect((await readSession(redis, prefix, theirs)).verified).toBe(true);
    // The same lockout again (redelivered): the same sessions are announced again, with no other change.
    const again = await revokeUserSessions(
      redis,
      prefix,
      { username: 'bob', reason: 'lockout', at: now + 10, eventId },
      { ttlSeconds },
    );
    expect(again.filter((o) => o.announce).map((o) => o.outcome)).toEqual(['duplicate', 'duplicate']);
  });

  it('still finds a session verified under a longer lifetime after one verified under a shorter', async () => {
    // An admin lowered the lifetime between two verifications: the user's index must live as
    // long as the older, longer session, or a revoke-all after the new lifetime misses it.
    const now = Date.now();
    const older = newSession();
    const newer = newSession();
    const validate = (session: string, lifetime: number) =>
      applySessionChanges(
        redis,
        prefix,
        [
          {
            kind: 'validate',
            session,
            username: 'erin',
            appId: 'jira',
            at: Date.now(),
            eventId: randomUUID(),
          },
        ],
        { ttlSeconds: lifetime },
      );
    await validate(older, 8 * 3_600);
    await validate(newer, 2);
    expect(await redis.pttl(userSessionsKey(prefix, 'erin'))).toBeGreaterThan((8 * 3_600 - 60) * 1000);
    await new Promise((resolve) => setTimeout(resolve, 2_100)); // the short lifetime is over
    const outcomes = await revokeUserSessions(
      redis,
      prefix,
      { username: 'erin', reason: 'lockout', at: now + 3_000, eventId: randomUUID() },
      { ttlSeconds: 2 },
    );
    expect(outcomes.filter((o) => o.announce).map((o) => o.session)).toEqual([older]);
    expect((await readSession(redis, prefix, older)).verified).toBe(false);
  });

  it('refuses a validation older than the revoke-all even when it reaches Redis after it', async () => {
    const now = Date.now();
    const session = newSession();
    await revokeUserSessions(
      redis,
      prefix,
      { username: 'dora', reason: 'admin', at: now, eventId: randomUUID() },
      { ttlSeconds },
    );
    const [late] = await applySessionChanges(
      redis,
      prefix,
      [{ kind: 'validate', session, username: 'dora', appId: 'jira', at: now - 1, eventId: randomUUID() }],
      { ttlSeconds },
    );
    expect(late).toMatchObject({ outcome: 'stale', announce: false });
    const [newer] = await applySessionChanges(
      redis,
      prefix,
      [{ kind: 'validate', session, username: 'dora', appId: 'jira', at: now + 1, eventId: randomUUID() }],
      { ttlSeconds },
    );
    expect(newer).toMatchObject({ outcome: 'applied', announce: true });
  });
});

describe('order per session', () => {
  // revoke: an admin revoke of this session; revoke-user: a lockout of its user.
  const op = fc.oneof(
    fc.record({ kind: fc.constant('validate' as const), t: fc.integer({ min: 0, max: 20 }) }),
    fc.record({ kind: fc.constant('logout' as const), t: fc.integer({ min: 0, max: 20 }) }),
    fc.record({ kind: fc.constant('revoke' as const), t: fc.integer({ min: 0, max: 20 }) }),
    fc.record({ kind: fc.constant('revoke-user' as const), t: fc.integer({ min: 0, max: 20 }) }),
  );

  it('ends in the state the event times say, for any order, redelivery and batching', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(op, { minLength: 1, maxLength: 8 }),
        fc.array(fc.nat(), { minLength: 1, maxLength: 30 }),
        fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 1, maxLength: 30 }),
        async (ops, picks, batchSizes) => {
          const session = newSession();
          const username = `u-${randomUUID()}`;
          const base = Date.now() - 60_000;
          const changes: SessionChange[] = ops.map((o, i) => {
            const at = base + o.t * 1000;
            const eventId = `e${i}-${session}`;
            if (o.kind === 'validate')
              return { kind: 'validate', session, username, appId: 'jira', at, eventId };
            if (o.kind === 'revoke-user')
              return { kind: 'revoke-user', username, reason: 'lockout', at, eventId };
            const reason = o.kind === 'logout' ? 'logout' : 'admin';
            return { kind: 'revoke', session, reason, at, eventId };
          });
          // Deliveries: every change at least once, in an arbitrary order, with repeats.
          const deliveries = [...changes, ...picks.map((p) => changes[p % changes.length]!)];
          const shuffled = deliveries
            .map((c, i) => ({ c, k: picks[i % picks.length]! * 31 + i * 7 }))
            .sort((a, b) => (a.k % 17) - (b.k % 17))
            .map(({ c }) => c);
          for (let i = 0, b = 0; i < shuffled.length; b++) {
            const size = batchSizes[b % batchSizes.length]!;
            await applySessionChanges(redis, prefix, shuffled.slice(i, i + size), { ttlSeconds });
            i += size;
          }
          const latestValidation = Math.max(...ops.filter((o) => o.kind === 'validate').map((o) => o.t), -1);
          const latestRevoke = Math.max(...ops.filter((o) => o.kind !== 'validate').map((o) => o.t), -1);
          const loggedOut = ops.some((o) => o.kind === 'logout');
          const shouldBeVerified = !loggedOut && latestValidation >= 0 && latestValidation > latestRevoke;
          const state = await readSession(redis, prefix, session);
          expect(state.verified).toBe(shouldBeVerified);
          if (shouldBeVerified)
            expect(state.verifiedAt).toBe(new Date(base + latestValidation * 1000).toISOString());
        },
      ),
      { numRuns: 300 },
    );
  }, 60_000);
});
