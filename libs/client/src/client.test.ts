import { describe, expect, it } from 'vitest';
import { createTwofoldClient } from './client.js';

/** A fetch that records each request body and answers 202 {id}. */
function recordingFetch() {
  const bodies: Record<string, unknown>[] = [];
  const fetch = (async (_url: string, init?: RequestInit) => {
    const body = JSON.parse(String(init?.body)) as Record<string, unknown>;
    bodies.push(body);
    return new Response(JSON.stringify({ id: body['id'] ?? 'made-by-api' }), {
      status: 202,
      headers: { 'content-type': 'application/json' },
    });
  }) as typeof globalThis.fetch;
  return { bodies, fetch };
}

describe('login events sent again with the same id', () => {
  it('carry the time of the first attempt, so the audit stores them once', async () => {
    const { bodies, fetch } = recordingFetch();
    const client = createTwofoldClient({ baseUrl: 'http://twofold.test', appKey: 'k', appId: 'jira', fetch });
    const login = { username: 'alice', ssoToken: 'sso-1', ip: '192.0.2.1', eventId: 'login-1' };
    await client.loginSucceeded(login);
    await new Promise((resolve) => setTimeout(resolve, 5));
    await client.loginSucceeded(login);
    await client.loginFailed({
      username: 'bob',
      ip: '192.0.2.2',
      reason: 'bad_password',
      eventId: 'failed-1',
    });
    await client.loginFailed({
      username: 'bob',
      ip: '192.0.2.2',
      reason: 'bad_password',
      eventId: 'failed-1',
    });

    expect(bodies[0]!['time']).toEqual(expect.any(String));
    expect(bodies[1]!['time']).toBe(bodies[0]!['time']);
    expect(bodies[1]!['id']).toBe('login-1');
    expect(bodies[3]!['time']).toBe(bodies[2]!['time']);
  });

  it('send a time given by the caller, and none without an id (the api stamps it)', async () => {
    const { bodies, fetch } = recordingFetch();
    const client = createTwofoldClient({ baseUrl: 'http://twofold.test', appKey: 'k', appId: 'jira', fetch });
    const at = new Date('2026-12-07T10:00:00.000Z');
    await client.logout({ username: 'alice', ssoToken: 'sso-1', eventId: 'logout-1', time: at });
    await client.loginSucceeded({ username: 'alice', ssoToken: 'sso-2', ip: '192.0.2.1' });
    expect(bodies[0]).toMatchObject({ id: 'logout-1', time: '2026-12-07T10:00:00.000Z' });
    expect(bodies[1]).not.toHaveProperty('time');
    expect(bodies[1]).not.toHaveProperty('id');
  });
});
