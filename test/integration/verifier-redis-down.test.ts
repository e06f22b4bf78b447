// Redis stopped under the verifier and the api (issue 3's open point, issue 9's reliability
// case): decisions fail closed (challenge/state_unavailable), nothing skips the second
// factor — not even an IdP login or a session verified before the outage — no login is
// left undecided, codes are refused with 503, and everything works again when Redis is
// back. The Redis stopped is a private one on a free port, never the shared stack's.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEvent, hashSessionToken, type AnyTwofoldEvent } from '@twofold/contracts';
import { oathtoolTotp, secretOf, previousStepCode } from '../support/otp.js';
import { apiClient, startServices, type RunningServices } from '../support/services.js';
import { eventually, isolated, type Isolated } from '../support/stack.js';
import { readTopic } from '../support/topic-reader.js';
import { PrivateRedis } from '../reliability/support/private-redis.js';

type Decision = { decision: string; reason: string; challengeId?: string; loginEventId: string };

let world: Isolated;
let redis: PrivateRedis;
let services: RunningServices;
let jira: ReturnType<typeof apiClient>;
const now = () => Math.floor(Date.now() / 1000);

beforeAll(async () => {
  redis = new PrivateRedis();
  await redis.start();
  world = await isolated('verifier-redis-down', { database: true });
  services = await startServices(world, ['api', 'verifier', 'session-broadcaster'], { REDIS_URL: redis.url });
  const admin = apiClient(services.apiUrl, world.env['TWOFOLD_ADMIN_KEY']);
  const app = await admin<{ key: string }>('POST', '/v1/admin/apps', { appId: 'jira' });
  expect(app.status).toBe(201);
  jira = apiClient(services.apiUrl, app.body.key);
}, 120_000);

afterAll(async () => {
  const codes = await services?.stop();
  await world?.cleanup();
  await redis?.destroy();
  for (const [name, code] of codes ?? []) expect(code, `${name} exit code after SIGTERM`).toBe(0);
});

const login = (username: string, session: string, extra: Record<string, unknown> = {}) =>
  createEvent('twofold.login.succeeded', 'app/jira', username, {
    appId: 'jira',
    session,
    method: 'password',
    ip: '203.0.113.20',
    ...extra,
  });

async function decide(event: AnyTwofoldEvent) {
  return jira<Decision>('POST', '/v1/login-events?wait=decision&timeoutMs=10000', {
    type: event.type,
    id: event.id,
    subject: event.subject,
    data: event.data,
  });
}

describe('Redis down', () => {
  it('fails closed while Redis is down, decides every login, and recovers when it returns', async () => {
    // Before: enrolled, challenged, verified; the session then skips.
    const started = await jira<{ enrollmentId: string; otpauthUri: string }>('POST', '/v1/enrollments', {
      username: 'rosa',
    });
    expect(started.status).toBe(201);
    const secret = secretOf(started.body.otpauthUri);
    const confirmed = await jira('POST', `/v1/enrollments/${started.body.enrollmentId}/confirm`, {
      code: await previousStepCode(secret),
    });
    expect(confirmed.status, JSON.stringify(confirmed.body)).toBe(200);
    const session = hashSessionToken(randomUUID());
    const first = await decide(login('rosa', session));
    expect(first.body).toMatchObject({ decision: 'challenge', reason: 'policy_required' });
    const verified = await jira('POST', `/v1/challenges/${first.body.challengeId}/verify`, {
      code: oathtoolTotp(secret),
    });
    expect(verified.body).toMatchObject({ verified: true });
    await eventually(
      async () => ((await decide(login('rosa', session))).body.decision === 'skip' ? true : undefined),
      15_000,
      'the verified session to skip',
    );
    const challenge = (await decide(login('rosa', hashSessionToken(randomUUID())))).body.challengeId!;

    // Redis goes away.
    const decisions = await readTopic(world.kafka, world.topics.secondFactor);
    await redis.stop();
    const during: AnyTwofoldEvent[] = [
      login('rosa', session), // verified before the outage: must not skip now
      login('rosa', hashSessionToken(randomUUID())),
      login('idp-user', hashSessionToken(randomUUID()), { method: 'sso', idp: 'okta' }),
      login('never-enrolled', hashSessionToken(randomUUID())),
      ...Array.from({ length: 20 }, (_, i) => login(`user-${i}`, hashSessionToken(randomUUID()))),
    ];
    // Apps that speak Kafka keep publishing; an app on the api asks and waits.
    await world.producer.publish('login', during.slice(1));
    const waited = await decide(during[0]!);
    expect(waited.status, 'the api answers, never with a 5xx').toBeLessThan(500);
    if (waited.status === 200) expect(waited.body.decision).not.toBe('skip');

    const ids = new Set(during.map((e) => e.id));
    const seen = await eventually(
      async () => {
        const got = decisions
          .json<{ type: string; data: Decision }>()
          .filter((e) => e.type === 'twofold.2fa.decided' && ids.has(e.data.loginEventId));
        return got.length >= during.length ? got : undefined;
      },
      30_000,
      'a decision for every login published during the outage',
    );
    expect(new Set(seen.map((e) => e.data.loginEventId)).size).toBe(during.length);
    for (const { data } of seen)
      expect(data).toMatchObject({ decision: 'challenge', reason: 'state_unavailable' });

    // A code typed during the outage is refused (the lock state cannot be read), not accepted.
    const code = await jira<{ verified?: boolean; detail?: string }>(
      'POST',
      `/v1/challenges/${challenge}/verify`,
      { code: oathtoolTotp(secret, { atSeconds: now() + 30 }) },
    );
    // Closed, and said so: 503 with a detail (the challenge state cannot be read).
    expect(code.status).toBe(503);
    expect(code.body.detail).toMatch(/unavailable/);
    expect(code.body.verified).not.toBe(true);
    expect((await fetch(`${services.apiUrl}/readyz`)).status).toBe(503);
    for (const [name, child] of services.processes)
      expect(child.exitCode, `${name} still running`).toBeNull();

    // Redis is back (empty: a restart without persistence): decisions and codes work again.
    await redis.start();
    await eventually(
      async () => ((await fetch(`${services.apiUrl}/readyz`)).status === 200 ? true : undefined),
      30_000,
      'the api to be ready again',
    );
    const again = await eventually(
      async () => {
        const res = await decide(login('rosa', hashSessionToken(randomUUID())));
        return res.status === 200 && res.body.reason === 'policy_required' ? res.body : undefined;
      },
      30_000,
      'a normal decision after Redis returned',
    );
    expect(
      (await decide(login('idp-user', hashSessionToken(randomUUID()), { method: 'sso' }))).body,
    ).toMatchObject({
      decision: 'skip',
      reason: 'sso',
    });
    const after = await jira('POST', `/v1/challenges/${again.challengeId}/verify`, {
      code: oathtoolTotp(secret, { atSeconds: now() + 30 }),
    });
    expect(after.body).toMatchObject({ verified: true });
    await decisions.stop();
  }, 150_000);
});
