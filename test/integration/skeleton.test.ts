// The walking skeleton through the real processes of `npm run stack:up`: an event posted
// to the api lands on twofold.login.v1, the verifier decides, the audit sink stores both.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashSessionToken } from '@twofold/contracts';
import { createPool, type Pool } from '@twofold/store';
import { eventually, stackEnv } from '../support/stack.js';

const env = stackEnv();
const api = env['TWOFOLD_API_URL'] ?? 'http://127.0.0.1:8080';
let pool: Pool;
let appKey: string;

beforeAll(async () => {
  pool = createPool({ url: env['DATABASE_URL']!, schema: 'twofold', max: 2 });
  const res = await fetch(`${api}/v1/admin/apps`, {
    method: 'POST',
    headers: { authorization: `Bearer ${env['TWOFOLD_ADMIN_KEY']}`, 'content-type': 'application/json' },
    body: JSON.stringify({ appId: 'skeleton-jira', name: 'Jira (skeleton test)' }),
  });
  expect(res.status).toBe(201);
  appKey = ((await res.json()) as { key: string }).key;
});
afterAll(async () => pool.end());

describe('walking skeleton', () => {
  it('api → login topic → verifier decision → audit rows for both events', async () => {
    const id = randomUUID();
    const session = hashSessionToken(`crowd-token-${id}`);
    const res = await fetch(`${api}/v1/login-events?wait=decision&timeoutMs=10000`, {
      method: 'POST',
      headers: { authorization: `Bearer ${appKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        id,
        type: 'twofold.login.succeeded',
        subject: ' Skeleton.User ',
        data: { appId: 'skeleton-jira', session, method: 'password', ip: '203.0.113.7' },
      }),
    });
    expect(res.status).toBe(200);
    const decision = (await res.json()) as Record<string, unknown>;
    expect(decision).toMatchObject({ loginEventId: id, appId: 'skeleton-jira', session });
    expect(['challenge', 'skip', 'enroll', 'deny']).toContain(decision['decision']);

    const rows = await eventually(
      async () => {
        const { rows } = await pool.query<{
          event_id: string;
          type: string;
          username: string;
          kafka_topic: string;
        }>(
          `SELECT event_id, type, username, kafka_topic FROM audit_events
          WHERE event_id = $1 OR (type = 'twofold.2fa.decided' AND event->'data'->>'loginEventId' = $1)`,
          [id],
        );
        return rows.length === 2 ? rows : undefined;
      },
      20_000,
      'both audit rows',
    );
    const byType = Object.fromEntries(rows.map((r) => [r.type, r]));
    expect(byType['twofold.login.succeeded']).toMatchObject({
      username: 'skeleton.user',
      kafka_topic: 'twofold.login.v1',
    });
    expect(byType['twofold.2fa.decided']).toMatchObject({
      username: 'skeleton.user',
      kafka_topic: 'twofold.2fa.v1',
    });
  });

  it('refuses an event without an app key, and one claiming another app', async () => {
    const body = {
      type: 'twofold.login.failed',
      subject: 'mallory',
      data: { appId: 'confluence', ip: '198.51.100.1', reason: 'bad_password' },
    };
    const anonymous = await fetch(`${api}/v1/login-events`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get('content-type')).toContain('application/problem+json');
    const impersonating = await fetch(`${api}/v1/login-events`, {
      method: 'POST',
      headers: { authorization: `Bearer ${appKey}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    expect(impersonating.status).toBe(403);
    expect(((await impersonating.json()) as { detail: string }).detail).toContain('skeleton-jira');
  });

  it('every service answers /healthz, /readyz and /metrics', async () => {
    for (const port of [8080, 9465, 9466, 9467, 9468]) {
      for (const path of ['/healthz', '/readyz', '/metrics']) {
        const res = await fetch(`http://127.0.0.1:${port}${path}`);
        expect(res.status, `:${port}${path}`).toBe(200);
      }
    }
  });
});
