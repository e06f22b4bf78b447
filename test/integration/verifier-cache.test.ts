// Issue 3's fast path stays correct: code verifiers keep a user's enrollment (in memory, and
// sealed into the challenge by the verifier) and check its version in the replay guard's
// script. A reset through one api replica is seen at once by another that keeps the old
// authenticator; the replay guard and the attempt count stay atomic across replicas.
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashSessionToken } from '@twofold/contracts';
import { createRedis, waitForRedis, type Redis } from '@twofold/redis';
import { CHALLENGE_MAX_ATTEMPTS, createChallengeStore, enrollmentVersionKey } from '@twofold/state';
import { createPool, type Pool } from '@twofold/store';
import { createSealedEnrollmentReader } from '@twofold/verification';
import { oathtoolTotp, secretOf, previousStepCode } from '../support/otp.js';
import { apiClient, startServices, type RunningServices } from '../support/services.js';
import { isolated, type Isolated } from '../support/stack.js';

type Decision = { decision: string; reason: string; challengeId?: string };
type Verified = { verified: boolean; reason?: string };

let world: Isolated;
let first: RunningServices; // api A and the verifier
let second: RunningServices; // api B, another replica
let redis: Redis;
let appKey: string;
const now = () => Math.floor(Date.now() / 1000);
const at = (s: RunningServices) => apiClient(s.apiUrl, appKey);
const admin = (s: RunningServices) => apiClient(s.apiUrl, world.env['TWOFOLD_ADMIN_KEY']);

async function enroll(via: RunningServices, username: string): Promise<string> {
  const started = await at(via)<{ enrollmentId: string; otpauthUri: string }>('POST', '/v1/enrollments', {
    username,
  });
  expect(started.status).toBe(201);
  const secret = secretOf(started.body.otpauthUri);
  const confirmed = await at(via)('POST', `/v1/enrollments/${started.body.enrollmentId}/confirm`, {
    code: await previousStepCode(secret),
  });
  expect(confirmed.status, JSON.stringify(confirmed.body)).toBe(200);
  return secret;
}

async function login(via: RunningServices, username: string): Promise<Decision> {
  const res = await at(via)<Decision>('POST', '/v1/login-events?wait=decision&timeoutMs=15000', {
    type: 'twofold.login.succeeded',
    subject: username,
    data: {
      appId: 'jira',
      session: hashSessionToken(randomUUID()),
      method: 'password',
      ip: '203.0.113.77',
    },
  });
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return res.body;
}

const verify = (via: RunningServices, challengeId: string, code: string) =>
  at(via)<Verified>('POST', `/v1/challenges/${challengeId}/verify`, { code });

beforeAll(async () => {
  world = await isolated('verifier-cache', { database: true });
  first = await startServices(world, ['api', 'verifier']);
  second = await startServices(world, ['api']);
  const app = await admin(first)<{ key: string }>('POST', '/v1/admin/apps', { appId: 'jira' });
  expect(app.status).toBe(201);
  appKey = app.body.key;
  redis = createRedis(world.config.redis.url, 'state');
  await waitForRedis(redis);
}, 120_000);

afterAll(async () => {
  await redis?.quit();
  const codes = new Map([...((await second?.stop()) ?? []), ...((await first?.stop()) ?? [])]);
  await world?.cleanup();
  for (const [name, code] of codes) expect(code, `${name} exit code after SIGTERM`).toBe(0);
});

describe('enrollments kept by code verifiers', () => {
  it('a reset through api B is seen at once by api A, which kept the old authenticator', async () => {
    const old = await enroll(first, 'vera');
    // After the enrollment: its code (the previous step) must come before the codes of t.
    const t = now();
    // A checks a code: it keeps vera's authenticator from now on.
    const c1 = await login(first, 'vera');
    expect((await verify(first, c1.challengeId!, oathtoolTotp(old, { atSeconds: t }))).body).toMatchObject({
      verified: true,
    });
    // A challenge made before the reset carries the old authenticator sealed in it.
    const c2 = await login(first, 'vera');
    const versionBefore = await redis.get(enrollmentVersionKey(world.config.redis.keyPrefix, 'vera'));
    expect(versionBefore).toBeTruthy();

    expect((await admin(second)('DELETE', '/v1/admin/users/vera/enrollment')).status).toBe(204);
    expect(await redis.get(enrollmentVersionKey(world.config.redis.keyPrefix, 'vera'))).not.toBe(
      versionBefore,
    );

    // A fresh code of the old authenticator: refused by A at once, nothing recorded.
    const fresh = oathtoolTotp(old, { atSeconds: t + 30 });
    expect((await verify(first, c2.challengeId!, fresh)).body).toMatchObject({
      verified: false,
      reason: 'bad_code',
    });
    // Not enrolled any more: the next login asks to enroll.
    expect(await login(first, 'vera')).toMatchObject({ decision: 'enroll', reason: 'not_enrolled' });

    // Enrolled again through B with a new secret: A refuses the old one, takes the new one.
    const renewed = await enroll(second, 'vera');
    const c3 = await login(first, 'vera');
    expect((await verify(first, c3.challengeId!, fresh)).body).toMatchObject({
      verified: false,
      reason: 'bad_code',
    });
    const c4 = await login(first, 'vera');
    expect(
      (await verify(first, c4.challengeId!, oathtoolTotp(renewed, { atSeconds: t + 30 }))).body,
    ).toMatchObject({ verified: true });
  });

  it('the same fresh code sent to both replicas for ten challenges at once: exactly one succeeds', async () => {
    const secret = await enroll(first, 'walt');
    // Both replicas keep walt's authenticator first, so the race is between kept copies.
    const warm = await Promise.all([login(first, 'walt'), login(first, 'walt')]);
    const warmCode = oathtoolTotp(secret, { atSeconds: now() });
    const warmed = await Promise.all([
      verify(first, warm[0].challengeId!, warmCode),
      verify(second, warm[1].challengeId!, warmCode),
    ]);
    expect(warmed.filter((r) => r.body.verified)).toHaveLength(1);

    const decisions = await Promise.all(Array.from({ length: 10 }, () => login(first, 'walt')));
    const code = oathtoolTotp(secret, { atSeconds: now() + 30 });
    const results = await Promise.all(
      decisions.map((d, i) => verify(i % 2 === 0 ? first : second, d.challengeId!, code)),
    );
    expect(results.map((r) => r.status)).toEqual(Array.from({ length: 10 }, () => 200));
    expect(results.filter((r) => r.body.verified)).toHaveLength(1);
    expect(results.filter((r) => r.body.reason === 'replayed')).toHaveLength(9);
  });
});

describe('sealed enrollments kept by the login verifier', () => {
  it('reads a user once per version token: same token, no query; another token or none, read again', async () => {
    await enroll(first, 'wes');
    const pool = createPool({ url: world.config.database.url, schema: world.config.database.schema, max: 1 });
    let queries = 0;
    const counting = {
      query: (...args: Parameters<Pool['query']>) => {
        queries++;
        return (pool.query as (...a: unknown[]) => unknown)(...args);
      },
    } as unknown as Pool;
    try {
      const read = createSealedEnrollmentReader(counting);
      const once = await read(['wes', 'nobody'], ['v1', 'v1']);
      expect([...once.keys()]).toEqual(['wes']);
      expect(queries).toBe(1);
      // Same tokens: both answers (enrolled, and not enrolled) come from memory.
      const again = await read(['wes', 'nobody'], ['v1', 'v1']);
      expect(again.get('wes')).toEqual(once.get('wes'));
      expect(again.has('nobody')).toBe(false);
      expect(queries).toBe(1);
      // A new token (the authenticator changed) or none (Redis unreadable): read again.
      await read(['wes'], ['v2']);
      expect(queries).toBe(2);
      await read(['wes'], [undefined]);
      await read(['wes'], [undefined]);
      expect(queries).toBe(4);
      // Reset: the next token sees it gone.
      expect((await admin(first)('DELETE', '/v1/admin/users/wes/enrollment')).status).toBe(204);
      expect((await read(['wes'], ['v3'])).has('wes')).toBe(false);
      expect(queries).toBe(5);
      // "Not enrolled" is kept a shorter time than an authenticator.
      const brief = createSealedEnrollmentReader(counting, { maxNoneAgeMs: 50 });
      await brief(['nobody'], ['v1']);
      await brief(['nobody'], ['v1']);
      expect(queries).toBe(6);
      await sleep(80);
      await brief(['nobody'], ['v1']);
      expect(queries).toBe(7);
    } finally {
      await pool.end();
    }
  });

  it('an activation changes the version token before the enrollment is stored', async () => {
    // yuri is not enrolled, under a token the login verifier now keeps "not enrolled" with.
    expect(await login(first, 'yuri')).toMatchObject({ decision: 'enroll', reason: 'not_enrolled' });
    const key = enrollmentVersionKey(world.config.redis.keyPrefix, 'yuri');
    const before = await redis.get(key);
    expect(before).toBeTruthy();

    // Holds the activation's transaction open after its insert, to look at Redis meanwhile.
    const pool = createPool({ url: world.config.database.url, schema: world.config.database.schema, max: 1 });
    try {
      await pool.query(`
        CREATE FUNCTION hold_activation() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN PERFORM pg_sleep(1); RETURN NEW; END $$;
        CREATE TRIGGER hold_activation AFTER INSERT ON enrollments
          FOR EACH ROW WHEN (NEW.username = 'yuri') EXECUTE FUNCTION hold_activation();`);
      const started = await at(first)<{ enrollmentId: string; otpauthUri: string }>(
        'POST',
        '/v1/enrollments',
        {
          username: 'yuri',
        },
      );
      expect(started.status).toBe(201);
      const confirming = at(first)('POST', `/v1/enrollments/${started.body.enrollmentId}/confirm`, {
        code: await previousStepCode(secretOf(started.body.otpauthUri)),
      });
      const held = async () =>
        (
          await pool.query<{ n: number }>(
            "SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event = 'PgSleep' AND query LIKE 'INSERT INTO enrollments%'",
          )
        ).rows[0]!.n;
      const deadline = Date.now() + 10_000;
      while ((await held()) === 0 && Date.now() < deadline) await sleep(20);
      expect(await held(), 'the activation reached its insert').toBe(1);
      // The row is inserted, not committed: a login read now sees no enrollment, and must
      // do so under a token that the commit leaves behind.
      const during = await redis.get(key);
      expect(during).toBeTruthy();
      expect(during).not.toBe(before);
      expect((await confirming).status).toBe(200);
    } finally {
      await pool.query('DROP TRIGGER IF EXISTS hold_activation ON enrollments');
      await pool.end();
    }
    expect(await login(first, 'yuri')).toMatchObject({ decision: 'challenge', reason: 'policy_required' });
  });
});

describe('challenge attempts (one script)', () => {
  it('concurrent attempts on one challenge are counted exactly; another app counts none', async () => {
    const store = createChallengeStore(redis, world.config.redis.keyPrefix);
    const challenge = await store.create({
      username: 'xena',
      appId: 'jira',
      session: hashSessionToken(randomUUID()),
      ip: '203.0.113.78',
      loginEventId: randomUUID(),
    });
    const foreign = await store.takeAttempt(challenge.challengeId, { appId: 'bitbucket' });
    expect(foreign).toEqual({ kind: 'forbidden', ownerAppId: 'jira' });
    expect((await store.get(challenge.challengeId))?.attempts).toBe(0);

    const results = await Promise.all(
      Array.from({ length: 20 }, () => store.takeAttempt(challenge.challengeId, { appId: 'jira' })),
    );
    const kinds = results.map((r) => r.kind);
    expect(kinds.filter((k) => k === 'ok')).toHaveLength(CHALLENGE_MAX_ATTEMPTS);
    expect(kinds.filter((k) => k === 'exhausted')).toHaveLength(1);
    expect(kinds.filter((k) => k === 'missing')).toHaveLength(20 - CHALLENGE_MAX_ATTEMPTS - 1);
    const counted = results.flatMap((r) => (r.kind === 'ok' ? [r.challenge.attempts] : []));
    expect(counted.sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5]);
    expect(await store.get(challenge.challengeId)).toBeUndefined();
  });
});
