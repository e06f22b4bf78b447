// A verifier that has not read the policy yet (Postgres unreachable since it started) answers
// every login with a challenge (state_unavailable), never a skip, and stores that challenge:
// CONTRACT.md gives every challenge its challengeId, so an enrolled user can still sign in.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEvent, hashSessionToken } from '@twofold/contracts';
import { createRedis, waitForRedis, type Redis } from '@twofold/redis';
import { createChallengeStore, readLockStates, readSession } from '@twofold/state';
import { createEnrollmentsRepository, createPolicyRepository, createPool, type Pool } from '@twofold/store';
import { createPolicySnapshot } from '@twofold/verification';
import { createLoginDecider } from '../../services/verifier/src/login-decider.js';
import { isolated, quietLogger, type Isolated } from '../support/stack.js';

let world: Isolated;
let redis: Redis;
let pool: Pool;
let unreachable: Pool;

beforeAll(async () => {
  world = await isolated('verifier-policy-down');
  redis = createRedis(world.config.redis.url, 'state');
  await waitForRedis(redis);
  pool = createPool({ url: world.config.database.url, schema: world.config.database.schema, max: 2 });
  // Nothing listens on port 1: every query fails to connect.
  unreachable = createPool({ url: 'postgres://twofold@127.0.0.1:1/twofold', schema: 'public', max: 1 });
});

afterAll(async () => {
  await redis.quit();
  await pool.end();
  await unreachable.end().catch(() => undefined);
  await world.cleanup();
});

describe('verifier without a policy', () => {
  it('challenges every login and stores each challenge', async () => {
    const logger = quietLogger();
    const policy = createPolicySnapshot({ repository: createPolicyRepository(unreachable), logger });
    await policy.start();
    policy.stop();
    expect(policy.current()).toBeUndefined();

    const prefix = world.config.redis.keyPrefix;
    const challenges = createChallengeStore(redis, prefix);
    const decide = createLoginDecider({
      policy,
      enrollments: createEnrollmentsRepository(pool),
      state: {
        sessionVerified: (logins) =>
          Promise.all(
            logins.map(async ({ session }) => (await readSession(redis, prefix, session)).verified),
          ),
        lockState: (logins) => readLockStates(redis, prefix, logins),
      },
      challenges,
      logger,
    });
    const logins = ['alice', 'bob'].map((user) =>
      createEvent('twofold.login.succeeded', 'app/jira', user, {
        appId: 'jira',
        session: hashSessionToken(randomUUID()),
        method: user === 'bob' ? 'sso' : 'password',
        ip: '192.0.2.10',
      }),
    );

    const decided = await decide(logins);

    expect(decided.map((d) => [d.decision, d.reason])).toEqual([
      ['challenge', 'state_unavailable'],
      ['challenge', 'state_unavailable'],
    ]);
    for (const [i, d] of decided.entries()) {
      expect(d.challengeId).toEqual(expect.any(String));
      const stored = await challenges.get(d.challengeId!);
      expect(stored).toMatchObject({ username: logins[i]!.subject, appId: 'jira', session: d.session });
    }
  });
});
