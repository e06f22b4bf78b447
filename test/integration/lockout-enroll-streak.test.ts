// A user the policy requires to use a second factor, not enrolled yet, signs in with the
// right password and is answered `enroll`: that success ends their failure streak (as a
// skip does), or occasional typos over weeks would add up to the NIST lock of a user who
// always signs in in the end. No second factor was passed, so the network does not become
// known-good.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEvent, hashSessionToken, type AnyTwofoldEvent } from '@twofold/contracts';
import { resolveLockoutRules } from '@twofold/lockout';
import type { Redis } from '@twofold/redis';
import { readLockState } from '@twofold/state';
import type { Isolated } from '../support/stack.js';
import { detectorCaughtUp, failedLogin, startDetectorWorld, type DetectorWorld } from './lockout-support.js';

const rules = resolveLockoutRules({});

let started: DetectorWorld;
let world: Isolated;
let redis: Redis;
let security: DetectorWorld['security'];

beforeAll(async () => {
  started = await startDetectorWorld('lockout-enroll-streak', rules);
  ({ world, redis, security } = started);
});
afterAll(() => started?.stop());

const groupId = () => started.groupId;
const prefix = () => started.prefix;
const caughtUp = () => detectorCaughtUp(world, groupId());

async function streakOf(username: string) {
  const base = `${prefix()}lo:{u:${username}}`;
  return redis.zcount(`${base}:streak`, `(${(await redis.get(`${base}:reset`)) ?? 0}`, '+inf');
}

const failed = failedLogin;

async function publishLogin(events: readonly AnyTwofoldEvent[]) {
  await world.producer.publish('login', events);
}

/** The right password, answered as the verifier answers a user who must enroll first. */
async function signInToEnroll(username: string, ip: string, time: Date) {
  const session = hashSessionToken(randomUUID());
  const login = createEvent(
    'twofold.login.succeeded',
    'app/jira',
    username,
    { appId: 'jira', session, method: 'password', ip },
    { time },
  );
  await publishLogin([login]);
  await world.producer.publish('secondFactor', [
    createEvent(
      'twofold.2fa.decided',
      'service/verifier',
      username,
      { loginEventId: login.id, appId: 'jira', session, decision: 'enroll', reason: 'not_enrolled' },
      { id: `decided-${login.id}`, time },
    ),
  ]);
}

describe('a user who must enroll first', () => {
  it('has the failure streak reset by each sign-in answered `enroll`, and is never locked for typos', async () => {
    const user = 'enroll-typist';
    const ip = '192.0.2.90';
    const from = Date.now() - 250 * 60_000;
    await publishLogin(
      Array.from({ length: 60 }, (_, i) => failed(user, ip, new Date(from + i * 2 * 60_000))),
    );
    await signInToEnroll(user, ip, new Date(from + 121 * 60_000));
    await caughtUp();
    expect(await streakOf(user)).toBe(0);
    await publishLogin(
      Array.from({ length: 60 }, (_, i) => failed(user, ip, new Date(from + (122 + i * 2) * 60_000))),
    );
    await caughtUp();
    expect(await streakOf(user)).toBe(60);
    expect(
      security
        .json<{ type: string; data: { scope?: string; key?: string } }>()
        .filter(
          (e) => e.type === 'twofold.lockout.imposed' && e.data.scope === 'user' && e.data.key === user,
        ),
    ).toEqual([]);
    // No second factor passed: the network is not one the user is known to sign in from.
    expect(await readLockState(redis, prefix(), user, ip)).toMatchObject({
      userLock: null,
      knownNetwork: false,
    });
  });
});
