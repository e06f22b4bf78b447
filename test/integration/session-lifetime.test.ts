// The session lifetime comes from the admin policy: PUT /v1/admin/policy {sessionTtlSeconds}
// reaches the broadcaster by its version poll, and the next verified session lives that
// long in Redis (its key's TTL), in the api's answer and in session.validated.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sessionKey, userSessionsKey } from '@twofold/state';
import { eventually } from '../support/stack.js';
import { createSessionWorld, type SessionWorld } from './session-world.js';

let w: SessionWorld;

beforeAll(async () => {
  w = await createSessionWorld('session-lifetime', {
    appIds: ['jira', 'confluence'],
    webhooks: { attempts: 3, backoffMs: 100, timeoutMs: 2_000, concurrency: 4, refreshMs: 500 },
    // The env value: in force until the policy names a lifetime.
    ttlSeconds: 3_600,
  });
});
afterAll(async () => w?.close());

const setPolicy = (body: Record<string, unknown>) =>
  fetch(`${w.apiUrl}/v1/admin/policy`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${w.adminKey}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });

/** Verifies a new session in jira; answers once confluence reads it as verified, with its Redis TTL. */
async function verifiedSession(username: string) {
  const token = `crowd-${randomUUID()}`;
  const { session } = await w.verify({ username, appId: 'jira', token });
  const current = await eventually(
    async () => {
      const { body } = await w.current('confluence', token);
      return body['verified'] === true ? body : undefined;
    },
    15_000,
    `${username}'s session verified`,
  );
  const prefix = w.world.config.redis.keyPrefix;
  const [ttlMs, indexTtlMs] = await Promise.all([
    w.redis.pttl(sessionKey(prefix, session)),
    w.redis.pttl(userSessionsKey(prefix, username)),
  ]);
  const lifetimeMs = Date.parse(current['expiresAt'] as string) - Date.parse(current['verifiedAt'] as string);
  const webhook = await eventually(
    async () =>
      w.receivers['confluence']!.deliveries.find(
        (d) => d.event.type === 'twofold.session.validated' && d.event.data.session === session,
      ),
    15_000,
    `${username}'s webhook`,
  );
  const announced = webhook.event.data as unknown as { verifiedAt: string; expiresAt: string };
  return {
    session,
    ttlMs,
    indexTtlMs,
    lifetimeMs,
    announcedMs: Date.parse(announced.expiresAt) - Date.parse(announced.verifiedAt),
  };
}

describe('session lifetime from the admin policy', () => {
  it('uses the env lifetime until the policy sets one, then the policy’s for every new session', async () => {
    const before = await verifiedSession('lena');
    expect(before.lifetimeMs).toBe(3_600_000);
    expect(before.announcedMs).toBe(3_600_000);
    expect(before.ttlMs).toBeGreaterThan(3_500_000);
    expect(before.ttlMs).toBeLessThanOrEqual(3_600_000);

    const put = await setPolicy({ sessionTtlSeconds: 600 });
    expect(put.status).toBe(200);
    // The broadcaster's copy follows the policy version by itself (no reload called).
    await eventually(async () => (w.lifetime.seconds() === 600 ? true : undefined), 10_000, 'TTL 600');

    const short = await verifiedSession('milo');
    expect(short.lifetimeMs).toBe(600_000);
    expect(short.announcedMs).toBe(600_000);
    expect(short.ttlMs).toBeGreaterThan(500_000);
    expect(short.ttlMs).toBeLessThanOrEqual(600_000);
    expect(short.indexTtlMs).toBeGreaterThan(500_000);
    expect(short.indexTtlMs).toBeLessThanOrEqual(600_000);

    // An earlier session keeps the lifetime it was verified with.
    const prefix = w.world.config.redis.keyPrefix;
    expect(await w.redis.pttl(sessionKey(prefix, before.session))).toBeGreaterThan(3_000_000);

    expect((await setPolicy({ sessionTtlSeconds: 7_200 })).status).toBe(200);
    await eventually(async () => (w.lifetime.seconds() === 7_200 ? true : undefined), 10_000, 'TTL 7200');
    const longer = await verifiedSession('nora');
    expect(longer.lifetimeMs).toBe(7_200_000);
    expect(longer.ttlMs).toBeGreaterThan(7_000_000);
  });

  it('refuses a lifetime under a minute at the admin route, and the one in force stays', async () => {
    const put = await setPolicy({ sessionTtlSeconds: 30 });
    expect(put.status).toBe(400);
    await w.lifetime.reload();
    expect(w.lifetime.seconds()).toBe(7_200);
  });
});
