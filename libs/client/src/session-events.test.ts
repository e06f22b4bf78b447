import { afterEach, describe, expect, it } from 'vitest';
import { TwofoldApiError, TwofoldNetworkError } from './errors.js';
import {
  SessionEventsAuthError,
  SessionEventsPositionError,
  subscribeSessionEvents,
  type SessionEventsGap,
  type SessionEventsSubscription,
} from './session-events.js';
import type { SessionEvent } from './session-event.js';

const encoder = new TextEncoder();
const frame = (n: number, type = 'twofold.session.revoked') =>
  `id: ${n}-0\nevent: ${type}\ndata: ${JSON.stringify({
    specversion: '1.0',
    id: `evt-${n}`,
    type,
    source: 'service/session-broadcaster',
    subject: 's',
    time: '2026-12-07T10:00:00.000Z',
    data: { session: `s${n}`, reason: 'logout' },
  })}\n\n`;

/** A stream that hands out `frames` one per pull, counting the pulls, then stays open. */
function pulledStream(frames: string[], signal?: AbortSignal | null) {
  const state = { pulls: 0 };
  const body = new ReadableStream<Uint8Array>(
    {
      // Like fetch's own body: aborting the request errors the stream.
      start(controller) {
        signal?.addEventListener('abort', () => controller.error(signal.reason), { once: true });
      },
      pull(controller): Promise<void> | undefined {
        const next = frames[state.pulls++];
        if (next === undefined) return new Promise<void>(() => {}); // open, silent
        controller.enqueue(encoder.encode(next));
        return undefined;
      },
    },
    { highWaterMark: 0 },
  );
  return { body, state };
}

const opened: SessionEventsSubscription[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((s) => s.close()));
});
const subscribe = (...args: Parameters<typeof subscribeSessionEvents>) => {
  const s = subscribeSessionEvents(...args);
  opened.push(s);
  return s;
};
const until = async (check: () => boolean, ms = 2_000) => {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 5));
  }
};

describe('subscribeSessionEvents', () => {
  it('reads no further while a handler is busy (the stream, not memory, takes the backlog)', async () => {
    const frames = Array.from({ length: 500 }, (_, i) => frame(i + 1));
    let stream: ReturnType<typeof pulledStream> | undefined;
    const fetch = (async (_url: string, init?: RequestInit) => {
      stream = pulledStream(frames, init?.signal);
      return new Response(stream.body, { status: 200, headers: { 'content-type': 'text/event-stream' } });
    }) as typeof globalThis.fetch;
    let release!: () => void;
    const blocked = new Promise<void>((r) => (release = r));
    const handled: string[] = [];
    subscribe({
      baseUrl: 'http://twofold.test',
      appKey: 'k',
      fetch,
      onEvent: async (event) => {
        handled.push(event.id);
        if (handled.length === 1) await blocked;
      },
    });
    await until(() => handled.length === 1);
    await new Promise((r) => setTimeout(r, 100));
    // One chunk being handled, at most a couple buffered by the stream: not all 500.
    expect(stream!.state.pulls).toBeLessThan(5);
    release();
    await until(() => handled.length === 500);
    expect(handled.slice(0, 3)).toEqual(['evt-1', 'evt-2', 'evt-3']);
  });

  it('hands an event whose handler threw over again, resuming after the last one handled', async () => {
    const requests: (string | null)[] = [];
    const fetch = (async (_url: string, init?: RequestInit) => {
      requests.push(new Headers(init?.headers).get('last-event-id'));
      const from = requests.length === 1 ? 1 : 2;
      const { body } = pulledStream([frame(from), frame(from + 1), from === 1 ? frame(3) : ''], init?.signal);
      return new Response(body, { status: 200 });
    }) as typeof globalThis.fetch;
    const handled: string[] = [];
    const errors: Error[] = [];
    let thrown = false;
    const sub = subscribe({
      baseUrl: 'http://twofold.test',
      appKey: 'k',
      fetch,
      reconnectDelayMs: 1,
      onError: (err) => errors.push(err),
      onEvent: (event: SessionEvent) => {
        handled.push(event.id);
        if (event.id === 'evt-2' && !thrown) {
          thrown = true;
          throw new Error('store down');
        }
      },
    });
    await until(() => handled.includes('evt-3'));
    expect(handled).toEqual(['evt-1', 'evt-2', 'evt-2', 'evt-3']);
    expect(requests).toEqual([null, '1-0']);
    expect(errors.map((e) => e.message)).toContain('store down');
    expect(sub.lastEventId).toBe('3-0');
  });

  it('reconnects a connection that went silent (no heartbeat), and one whose headers never came', async () => {
    const requests: (string | null)[] = [];
    const fetch = (async (_url: string, init?: RequestInit) => {
      requests.push(new Headers(init?.headers).get('last-event-id'));
      if (requests.length === 2) {
        // Never answers: only the abort ends it.
        return new Promise<Response>((_, reject) =>
          init?.signal?.addEventListener('abort', () => reject(init.signal!.reason as Error), { once: true }),
        );
      }
      const { body } = pulledStream(requests.length === 1 ? [frame(1)] : [], init?.signal);
      return new Response(body, { status: 200 });
    }) as typeof globalThis.fetch;
    const errors: string[] = [];
    subscribe({
      baseUrl: 'http://twofold.test',
      appKey: 'k',
      fetch,
      idleTimeoutMs: 50,
      reconnectDelayMs: 1,
      onError: (err) => errors.push(err.message),
      onEvent: () => {},
    });
    await until(() => requests.length >= 3);
    expect(requests.slice(0, 3)).toEqual([null, '1-0', '1-0']);
    expect(errors[0]).toMatch(/no data .* for 50 ms/);
  });

  it('reports its connection failures as TwofoldNetworkError (a TwofoldApiError), and its own aborts not at all', async () => {
    const refused = new TypeError('fetch failed', {
      cause: new Error('connect ECONNREFUSED 127.0.0.1:8080'),
    });
    const reset = new TypeError('terminated', { cause: new Error('other side closed') });
    let calls = 0;
    const fetch = (async (_url: string, init?: RequestInit) => {
      calls++;
      if (calls === 1) throw refused;
      if (calls === 2) {
        // One event, then the connection breaks.
        let sent = false;
        const body = new ReadableStream<Uint8Array>({
          pull(controller) {
            if (sent) return controller.error(reset);
            sent = true;
            controller.enqueue(encoder.encode(frame(1)));
          },
        });
        return new Response(body, { status: 200 });
      }
      if (calls === 3) return new Response(frame(2), { status: 200 }); // the api ends the stream
      const { body } = pulledStream([], init?.signal); // open, silent
      return new Response(body, { status: 200 });
    }) as typeof globalThis.fetch;
    const errors: Error[] = [];
    const sub = subscribe({
      baseUrl: 'http://twofold.test',
      appKey: 'k',
      fetch,
      reconnectDelayMs: 1,
      onError: (err) => errors.push(err),
      onEvent: () => {},
    });
    await until(() => calls >= 4);
    expect(errors).toHaveLength(3);
    for (const err of errors) {
      expect(err).toBeInstanceOf(TwofoldNetworkError);
      expect(err).toBeInstanceOf(TwofoldApiError);
      expect(err).toMatchObject({
        status: 0,
        retryable: true,
        timedOut: false,
        request: 'GET /v1/session-events',
      });
    }
    expect(errors[0]!.cause).toBe(refused);
    expect(errors[0]!.message).toMatch(/could not be reached \(fetch failed: connect ECONNREFUSED/);
    expect(errors[1]!.cause).toBe(reset);
    expect(errors[1]!.message).toMatch(/connection broke \(terminated: other side closed\)/);
    expect(errors[2]!.message).toMatch(/the api ended the stream; reconnecting/);
    // A reconnect asked for aborts the connection: that is no failure.
    sub.reconnect();
    await until(() => calls >= 5);
    await new Promise((r) => setTimeout(r, 20));
    expect(errors).toHaveLength(3);
    expect(sub.lastEventId).toBe('2-0');
  });

  it('reports a silent connection as TwofoldNetworkError with timedOut', async () => {
    const fetch = (async (_url: string, init?: RequestInit) => {
      const { body } = pulledStream([], init?.signal);
      return new Response(body, { status: 200 });
    }) as typeof globalThis.fetch;
    const errors: Error[] = [];
    subscribe({
      baseUrl: 'http://twofold.test',
      appKey: 'k',
      fetch,
      idleTimeoutMs: 30,
      reconnectDelayMs: 1,
      onError: (err) => errors.push(err),
      onEvent: () => {},
    });
    await until(() => errors.length > 0);
    expect(errors[0]).toBeInstanceOf(TwofoldNetworkError);
    expect(errors[0]).toMatchObject({ status: 0, timedOut: true });
  });

  it.each([
    [401, SessionEventsAuthError],
    [400, SessionEventsPositionError],
  ] as const)(
    'settles `stopped` with the error that stopped it (HTTP %i), with no onError given',
    async (status, type) => {
      let calls = 0;
      const fetch = (async () => {
        calls++;
        return new Response('{"detail":"no"}', {
          status,
          headers: { 'content-type': 'application/problem+json' },
        });
      }) as typeof globalThis.fetch;
      const sub = subscribe({
        baseUrl: 'http://twofold.test',
        appKey: 'k',
        lastEventId: '1-0',
        fetch,
        reconnectDelayMs: 1,
        onEvent: () => {},
      });
      const stopped = await sub.stopped;
      expect(stopped).toBeInstanceOf(type);
      expect(calls).toBe(1);
    },
  );

  it('settles `stopped` with undefined after close(), and never rejects', async () => {
    const fetch = (async (_url: string, init?: RequestInit) => {
      const { body } = pulledStream([frame(1)], init?.signal);
      return new Response(body, { status: 200 });
    }) as typeof globalThis.fetch;
    const handled: string[] = [];
    const sub = subscribe({
      baseUrl: 'http://twofold.test',
      appKey: 'k',
      fetch,
      onEvent: (event) => void handled.push(event.id),
    });
    await until(() => handled.length === 1);
    let settled = false;
    void sub.stopped.then(() => (settled = true));
    await new Promise((r) => setTimeout(r, 20));
    expect(settled).toBe(false);
    await sub.close();
    await expect(sub.stopped).resolves.toBeUndefined();
  });

  it('settles `stopped` with the error an onError threw, instead of an unhandled rejection', async () => {
    const fetch = (async () => new Response('', { status: 403 })) as typeof globalThis.fetch;
    const thrown = new Error('logger down');
    const sub = subscribe({
      baseUrl: 'http://twofold.test',
      appKey: 'k',
      fetch,
      onError: () => {
        throw thrown;
      },
      onEvent: () => {},
    });
    expect(await sub.stopped).toBe(thrown);
  });

  it('hands an event re-announced at a later position (a broadcaster retry) over once', async () => {
    // evt-1 again at 2-0: its position is new, its id is not.
    const again = frame(1).replace('id: 1-0', 'id: 2-0');
    const fetch = (async (_url: string, init?: RequestInit) => {
      const { body } = pulledStream([frame(1), again, frame(3)], init?.signal);
      return new Response(body, { status: 200 });
    }) as typeof globalThis.fetch;
    const handled: string[] = [];
    const sub = subscribe({
      baseUrl: 'http://twofold.test',
      appKey: 'k',
      fetch,
      onEvent: (event) => void handled.push(event.id),
    });
    await until(() => handled.includes('evt-3'));
    expect(handled).toEqual(['evt-1', 'evt-3']);
    expect(sub.lastEventId).toBe('3-0');
  });

  it("reports the api's problem detail when it refuses the stream, and surfaces gaps", async () => {
    let calls = 0;
    const fetch = (async (_url: string, init?: RequestInit) => {
      calls++;
      if (calls === 1) {
        return new Response(
          JSON.stringify({ status: 503, detail: 'the session event stream is not running' }),
          {
            status: 503,
            headers: { 'content-type': 'application/problem+json' },
          },
        );
      }
      const { body } = pulledStream(['event: gap\ndata: {"detail":"trimmed"}\n\n'], init?.signal);
      return new Response(body, { status: 200 });
    }) as typeof globalThis.fetch;
    const errors: Error[] = [];
    let gaps = 0;
    subscribe({
      baseUrl: 'http://twofold.test',
      appKey: 'k',
      lastEventId: '1-0',
      fetch,
      reconnectDelayMs: 1,
      onError: (err) => errors.push(err),
      onGap: () => gaps++,
      onEvent: () => {},
    });
    await until(() => gaps === 1);
    // The api's answer as the client's error type: status, detail, retryable.
    expect(errors[0]).toBeInstanceOf(TwofoldApiError);
    expect(errors[0]).toMatchObject({
      status: 503,
      detail: 'the session event stream is not running',
      retryable: true,
    });
  });

  it('stops with SessionEventsPositionError when the api refuses the position, instead of sending it for ever', async () => {
    const requests: (string | null)[] = [];
    const fetch = (async (_url: string, init?: RequestInit) => {
      requests.push(new Headers(init?.headers).get('last-event-id'));
      return new Response(
        JSON.stringify({
          status: 400,
          detail: 'Last-Event-ID must be an event id this stream sent (like 1764320400000-0)',
        }),
        { status: 400, headers: { 'content-type': 'application/problem+json' } },
      );
    }) as typeof globalThis.fetch;
    const errors: Error[] = [];
    subscribe({
      baseUrl: 'http://twofold.test',
      appKey: 'k',
      lastEventId: 'yesterday',
      fetch,
      reconnectDelayMs: 1,
      onError: (err) => errors.push(err),
      onEvent: () => {},
    });
    await until(() => errors.length > 0);
    await new Promise((r) => setTimeout(r, 100));
    expect(requests).toEqual(['yesterday']);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(SessionEventsPositionError);
    expect(errors[0]).toMatchObject({
      lastEventId: 'yesterday',
      detail: 'Last-Event-ID must be an event id this stream sent (like 1764320400000-0)',
    });
    expect(errors[0]!.message).toMatch(/stopped: subscribe again without lastEventId/);
  });

  it('moves past a gap that carries a position: a reconnect resumes there and hears no gap again', async () => {
    const requests: (string | null)[] = [];
    const fetch = (async (_url: string, init?: RequestInit) => {
      const from = new Headers(init?.headers).get('last-event-id');
      requests.push(from);
      // The api: from 1-0, events 2 to 4 are gone; from 4-18446744073709551615 (just before 5-0), no gap.
      const frames =
        from === '1-0'
          ? [
              'id: 4-18446744073709551615\nevent: gap\ndata: {"detail":"events after 1-0 are no longer kept; re-check sessions","lastEventId":"1-0","nextEventId":"5-0"}\n\n',
              frame(5),
              frame(6),
            ]
          : [frame(5), frame(6)];
      const { body } = pulledStream(frames, init?.signal);
      return new Response(body, { status: 200 });
    }) as typeof globalThis.fetch;
    const gaps: SessionEventsGap[] = [];
    const handled: string[] = [];
    let thrown = false;
    const sub = subscribe({
      baseUrl: 'http://twofold.test',
      appKey: 'k',
      lastEventId: '1-0',
      fetch,
      reconnectDelayMs: 1,
      onGap: (gap) => void gaps.push(gap),
      onEvent: (event) => {
        handled.push(event.id);
        // The first event after the gap fails once: the reconnect comes before it is handled.
        if (!thrown) {
          thrown = true;
          throw new Error('store down');
        }
      },
    });
    await until(() => handled.includes('evt-6'));
    expect(requests).toEqual(['1-0', '4-18446744073709551615']);
    expect(gaps).toEqual([
      { id: '4-18446744073709551615', detail: 'events after 1-0 are no longer kept; re-check sessions' },
    ]);
    expect(handled).toEqual(['evt-5', 'evt-5', 'evt-6']);
    expect(sub.lastEventId).toBe('6-0');
  });

  it('keeps its position on a gap without one (an api older than this SDK)', async () => {
    const requests: (string | null)[] = [];
    const fetch = (async (_url: string, init?: RequestInit) => {
      requests.push(new Headers(init?.headers).get('last-event-id'));
      const { body } = pulledStream(['event: gap\ndata: {"detail":"trimmed"}\n\n'], init?.signal);
      return new Response(body, { status: 200 });
    }) as typeof globalThis.fetch;
    const gaps: SessionEventsGap[] = [];
    const sub = subscribe({
      baseUrl: 'http://twofold.test',
      appKey: 'k',
      lastEventId: '1-0',
      fetch,
      reconnectDelayMs: 1,
      onGap: (gap) => void gaps.push(gap),
      onEvent: () => {},
    });
    await until(() => gaps.length === 1);
    expect(gaps[0]).toEqual({ id: undefined, detail: 'trimmed' });
    expect(sub.lastEventId).toBe('1-0');
    sub.reconnect();
    await until(() => gaps.length === 2);
    expect(requests).toEqual(['1-0', '1-0']);
  });
});
