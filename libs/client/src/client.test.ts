import { once } from 'node:events';
import { createServer, type AddressInfo } from 'node:net';
import { describe, expect, it, vi } from 'vitest';
import { createTwofoldClient } from './client.js';
import { TwofoldApiError, TwofoldNetworkError } from './errors.js';

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

  it('send a time given by the caller, and make an id and time when there is none', async () => {
    const { bodies, fetch } = recordingFetch();
    const client = createTwofoldClient({ baseUrl: 'http://twofold.test', appKey: 'k', appId: 'jira', fetch });
    const at = new Date('2026-12-07T10:00:00.000Z');
    await client.logout({ username: 'alice', ssoToken: 'sso-1', eventId: 'logout-1', time: at });
    await client.loginSucceeded({ username: 'alice', ssoToken: 'sso-2', ip: '192.0.2.1' });
    expect(bodies[0]).toMatchObject({ id: 'logout-1', time: '2026-12-07T10:00:00.000Z' });
    expect(bodies[1]).toMatchObject({
      id: expect.stringMatching(/^[0-9a-f-]{36}$/),
      time: expect.any(String),
    });
  });
});

describe('a retry of the same id without its time', () => {
  it('sends the time given on the first attempt', async () => {
    const { bodies, fetch } = recordingFetch();
    const client = createTwofoldClient({ baseUrl: 'http://twofold.test', appKey: 'k', appId: 'jira', fetch });
    const time = new Date('2026-12-07T10:00:00.000Z');
    await client.loginSucceeded({ username: 'alice', ssoToken: 's', ip: '192.0.2.1', eventId: 'l-1', time });
    await client.loginSucceeded({ username: 'alice', ssoToken: 's', ip: '192.0.2.1', eventId: 'l-1' });
    expect(bodies[1]).toMatchObject({ id: 'l-1', time: '2026-12-07T10:00:00.000Z' });
  });
});

/** A fetch answering from a script, recording what was asked. */
function scriptedFetch(answers: (() => Response | Promise<Response>)[]) {
  const requests: { url: string; body: string | undefined; at: number }[] = [];
  const fetch = (async (url: string, init?: RequestInit) => {
    requests.push({ url, body: init?.body as string | undefined, at: Date.now() });
    const answer = answers[requests.length - 1];
    if (!answer) throw new Error('no more answers');
    return answer();
  }) as typeof globalThis.fetch;
  return { requests, fetch };
}
const problem =
  (status: number, detail: string, headers: Record<string, string> = {}) =>
  () =>
    new Response(JSON.stringify({ type: 'https://twofold.dev/problems/x', title: 'T', status, detail }), {
      status,
      headers: { 'content-type': 'application/problem+json', ...headers },
    });
const accepted = () => new Response(JSON.stringify({ id: 'x' }), { status: 202 });

describe('requests the api refused for now', () => {
  it('are sent again after Retry-After, with the same id and time', async () => {
    const { requests, fetch } = scriptedFetch([
      problem(503, 'this api replica is shutting down; retry the request', { 'retry-after': '1' }),
      accepted,
    ]);
    const client = createTwofoldClient({ baseUrl: 'http://twofold.test', appKey: 'k', appId: 'jira', fetch });
    await client.loginFailed({ username: 'bob', ip: '192.0.2.2', reason: 'bad_password' });
    expect(requests).toHaveLength(2);
    expect(requests[1]!.body).toBe(requests[0]!.body);
    expect(JSON.parse(requests[0]!.body!)).toMatchObject({
      id: expect.any(String),
      time: expect.any(String),
    });
    expect(requests[1]!.at - requests[0]!.at).toBeGreaterThanOrEqual(950);
  });

  it('back off without Retry-After, and give up with the api detail after the retries', async () => {
    const { requests, fetch } = scriptedFetch([
      problem(429, 'too many'),
      problem(429, 'too many'),
      problem(429, 'code submissions for this challenge (10 per minute); try again in 7 s'),
    ]);
    const client = createTwofoldClient({ baseUrl: 'http://twofold.test', appKey: 'k', appId: 'jira', fetch });
    const err = await client.verifyCode('c', '123456').catch((e: unknown) => e);
    expect(requests).toHaveLength(3);
    expect(requests[1]!.at - requests[0]!.at).toBeGreaterThanOrEqual(100);
    expect(err).toBeInstanceOf(TwofoldApiError);
    expect(err).toMatchObject({
      status: 429,
      retryable: true,
      detail: expect.stringMatching(/try again in 7 s/),
    });
  });

  it('are not retried when Retry-After is beyond maxRetryDelayMs, nor a code sent through a failing proxy', async () => {
    const { requests, fetch } = scriptedFetch([
      problem(429, 'wait a minute', { 'retry-after': '60' }),
      problem(502, 'bad gateway'),
    ]);
    const client = createTwofoldClient({ baseUrl: 'http://twofold.test', appKey: 'k', appId: 'jira', fetch });
    await expect(client.decide({ username: 'a', ssoToken: 's', ip: '192.0.2.1' })).rejects.toMatchObject({
      status: 429,
      retryAfterSeconds: 60,
    });
    // The code may have been accepted behind the proxy: a retry would answer "replayed".
    await expect(client.verifyCode('c', '123456')).rejects.toMatchObject({ status: 502 });
    expect(requests).toHaveLength(2);
  });

  it('are not retried on a 503 without Retry-After for a code: its step may be spent already', async () => {
    const { requests, fetch } = scriptedFetch([
      problem(503, 'the verification could not be recorded; try again with the next code'),
      problem(503, 'redis down'),
      accepted,
    ]);
    const client = createTwofoldClient({ baseUrl: 'http://twofold.test', appKey: 'k', appId: 'jira', fetch });
    await expect(client.verifyCode('c', '123456')).rejects.toMatchObject({
      status: 503,
      detail: expect.stringMatching(/next code/),
    });
    expect(requests).toHaveLength(1);
    // A login event is safe to repeat (same id and time): retried.
    await client.loginFailed({ username: 'bob', ip: '192.0.2.2', reason: 'bad_password' });
    expect(requests).toHaveLength(3);
  });

  it('are never retried with retries: 0', async () => {
    const { requests, fetch } = scriptedFetch([problem(503, 'down')]);
    const client = createTwofoldClient({
      baseUrl: 'http://t',
      appKey: 'k',
      appId: 'jira',
      fetch,
      retries: 0,
    });
    await expect(client.sessionStatus('sso')).rejects.toMatchObject({ status: 503, detail: 'down' });
    expect(requests).toHaveLength(1);
  });
});

describe('decide', () => {
  it('asks the api for a wait it accepts (1 ms to 30 s, whole)', async () => {
    const { requests, fetch } = scriptedFetch([accepted, accepted]);
    const client = createTwofoldClient({ baseUrl: 'http://t', appKey: 'k', appId: 'jira', fetch });
    const login = { username: 'a', ssoToken: 's', ip: '192.0.2.1' };
    expect(await client.decide(login, { timeoutMs: 120_000 })).toMatchObject({ decision: 'undecided' });
    await client.decide(login, { timeoutMs: 0.5 });
    expect(requests.map((r) => new URL(r.url).searchParams.get('timeoutMs'))).toEqual(['30000', '1']);
  });
});

describe('the time of an event id, for a retry that gives only the id', () => {
  it('is kept however many other ids were sent since (a count covered seconds at a busy rate)', async () => {
    const { bodies, fetch } = recordingFetch();
    const client = createTwofoldClient({ baseUrl: 'http://t', appKey: 'k', appId: 'jira', fetch });
    const login = { username: 'alice', ssoToken: 's', ip: '192.0.2.1', eventId: 'outage-1' };
    await client.loginSucceeded(login);
    for (let i = 0; i < 10_050; i++)
      await client.loginFailed({
        username: `u${i}`,
        ip: '192.0.2.2',
        reason: 'bad_password',
        eventId: `f-${i}`,
      });
    await new Promise((resolve) => setTimeout(resolve, 5));
    await client.loginSucceeded(login);
    expect(bodies.at(-1)).toMatchObject({ id: 'outage-1', time: bodies[0]!['time'] });
  });

  it('keeps at most 100,000 ids: past that the oldest is forgotten first', async () => {
    const { bodies, fetch } = recordingFetch();
    const client = createTwofoldClient({ baseUrl: 'http://t', appKey: 'k', appId: 'jira', fetch });
    const login = (eventId: string) => ({ username: 'alice', ssoToken: 's', ip: '192.0.2.1', eventId });
    await client.loginSucceeded(login('oldest'));
    await client.loginSucceeded(login('second'));
    for (let i = 0; i < 99_999; i++)
      await client.loginFailed({ username: 'u', ip: '192.0.2.2', reason: 'bad_password', eventId: `f-${i}` });
    await new Promise((resolve) => setTimeout(resolve, 5));
    await client.loginSucceeded(login('second'));
    await client.loginSucceeded(login('oldest'));
    expect(bodies.at(-2)).toMatchObject({ id: 'second', time: bodies[1]!['time'] });
    expect(bodies.at(-1)!['time']).not.toBe(bodies[0]!['time']);
  });

  it('is kept 10 minutes after the id was last sent, then forgotten', async () => {
    vi.useFakeTimers({ now: new Date('2026-12-07T10:00:00.000Z') });
    try {
      const { bodies, fetch } = recordingFetch();
      const client = createTwofoldClient({ baseUrl: 'http://t', appKey: 'k', appId: 'jira', fetch });
      const login = { username: 'alice', ssoToken: 's', ip: '192.0.2.1', eventId: 'slow-1' };
      await client.loginSucceeded(login);
      // Retried every 9 minutes, through an outage of 18: still the same event.
      for (let i = 0; i < 2; i++) {
        vi.advanceTimersByTime(9 * 60_000);
        await client.loginSucceeded(login);
      }
      vi.advanceTimersByTime(10 * 60_000 + 1);
      await client.loginSucceeded(login);
      expect(bodies.map((b) => b['time'])).toEqual([
        '2026-12-07T10:00:00.000Z',
        '2026-12-07T10:00:00.000Z',
        '2026-12-07T10:00:00.000Z',
        '2026-12-07T10:28:00.001Z',
      ]);
    } finally {
      vi.useRealTimers();
    }
  });

  it('of an undecided login whose id the SDK made is sent again when the app asks again', async () => {
    const { bodies, fetch } = recordingFetch(); // 202 {id}: no decision in time
    const client = createTwofoldClient({ baseUrl: 'http://t', appKey: 'k', appId: 'jira', fetch });
    const login = { username: 'a', ssoToken: 's', ip: '192.0.2.1' };
    const first = await client.decide(login);
    expect(first.decision).toBe('undecided');
    await new Promise((resolve) => setTimeout(resolve, 5));
    await client.decide({ ...login, eventId: first.loginEventId });
    expect(bodies[1]).toEqual(bodies[0]);
  });
});

/** A local port nothing listens on (it did a moment ago). */
async function closedPort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  server.close();
  await once(server, 'close');
  return port;
}

describe('requests the network lost', () => {
  const refused = () => {
    const cause = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' });
    return () => Promise.reject(new TypeError('fetch failed', { cause }));
  };

  it('raise TwofoldNetworkError, a TwofoldApiError with the cause, once the retries are spent', async () => {
    const { requests, fetch } = scriptedFetch([refused(), refused(), refused()]);
    const client = createTwofoldClient({ baseUrl: 'http://t', appKey: 'k', appId: 'jira', fetch });
    const err = await client
      .loginFailed({ username: 'bob', ip: '192.0.2.2', reason: 'bad_password' })
      .catch((e: unknown) => e);
    expect(requests).toHaveLength(3);
    expect(new Set(requests.map((r) => r.body)).size).toBe(1);
    expect(err).toBeInstanceOf(TwofoldNetworkError);
    expect(err).toBeInstanceOf(TwofoldApiError);
    expect(err).toMatchObject({
      status: 0,
      retryable: true,
      timedOut: false,
      request: 'POST /v1/login-events',
      detail:
        'POST /v1/login-events: the api could not be reached (fetch failed: connect ECONNREFUSED 127.0.0.1:1)',
    });
    expect((err as Error).cause).toBeInstanceOf(TypeError);
  });

  it('are not retried for a code, and a deadline that passed is not retried at all', async () => {
    const hang = (_url: string, init?: RequestInit) =>
      new Promise<Response>((_, reject) =>
        init?.signal?.addEventListener('abort', () => reject(init.signal!.reason as Error), { once: true }),
      );
    let calls = 0;
    const fetch = (async (url: string, init?: RequestInit) => {
      calls++;
      if (url.includes('/verify')) return refused()();
      return hang(url, init);
    }) as typeof globalThis.fetch;
    const client = createTwofoldClient({
      baseUrl: 'http://t',
      appKey: 'k',
      appId: 'jira',
      fetch,
      timeoutMs: 50,
    });
    // Not retryable: it may have been verified, and the same code again would be a wrong guess.
    await expect(client.verifyCode('c', '123456')).rejects.toMatchObject({
      name: 'TwofoldNetworkError',
      timedOut: false,
      retryable: false,
    });
    expect(calls).toBe(1);
    const err = await client.sessionStatus('sso').catch((e: unknown) => e);
    expect(calls).toBe(2);
    expect(err).toBeInstanceOf(TwofoldNetworkError);
    expect(err).toMatchObject({
      timedOut: true,
      retryable: true,
      type: 'https://twofold.dev/problems/sdk-timeout',
      detail: 'GET /v1/sessions/current: no answer from the api within 50 ms',
    });
    expect((err as Error).cause).toMatchObject({ name: 'TimeoutError' });
  });

  it('leaves a request fetch refuses by itself (an invalid header value) as it is, not retried', async () => {
    let calls = 0;
    const fetch = (async () => {
      calls++;
      throw new TypeError('Headers.append: "k\\n" is an invalid header value.');
    }) as typeof globalThis.fetch;
    const client = createTwofoldClient({ baseUrl: 'http://t', appKey: 'k\n', appId: 'jira', fetch });
    const err = await client.sessionStatus('sso').catch((e: unknown) => e);
    expect(calls).toBe(1);
    expect(err).toBeInstanceOf(TypeError);
    expect(err).not.toBeInstanceOf(TwofoldApiError);
  });

  it('from the real fetch (nothing listens) are TwofoldNetworkError too; api problems stay TwofoldApiError', async () => {
    const client = createTwofoldClient({
      baseUrl: `http://127.0.0.1:${await closedPort()}`,
      appKey: 'k',
      appId: 'jira',
      retries: 0,
    });
    const err = await client.sessionStatus('sso').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TwofoldNetworkError);
    expect((err as TwofoldNetworkError).detail).toMatch(
      /could not be reached \(fetch failed: .*ECONNREFUSED/,
    );

    const { fetch } = scriptedFetch([problem(400, 'bad')]);
    const api = createTwofoldClient({ baseUrl: 'http://t', appKey: 'k', appId: 'jira', fetch });
    const refusedByApi = await api.sessionStatus('sso').catch((e: unknown) => e);
    expect(refusedByApi).toBeInstanceOf(TwofoldApiError);
    expect(refusedByApi).not.toBeInstanceOf(TwofoldNetworkError);
    expect(refusedByApi).toMatchObject({ status: 400, retryable: false });
  });
});
