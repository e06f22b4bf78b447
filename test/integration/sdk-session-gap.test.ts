// The session-event stream past a gap, through the real api: the `gap` event carries the
// position past it (its `id:` line, and `nextEventId` in its data; `resumeAfterEventId` when
// no event follows it yet), so a client that reconnects before it handled the next event
// resumes there instead of hearing the same gap again; a malformed position is refused with
// 400, and the SDK stops on it instead of sending it for ever. Entries are written to the api's replay buffer (the Redis Stream the
// session broadcaster fills) directly, and trimmed, as MAXLEN trimming does under load.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  SessionEventsPositionError,
  subscribeSessionEvents,
  type SessionEventsGap,
  type SessionEventsSubscription,
} from '@twofold/client';
import { createRedis, waitForRedis, type Redis } from '@twofold/redis';
import { appendSessionEvents, sessionEventStreamKey, trimSessionEvents } from '@twofold/state';
import { apiClient, startServices, type RunningServices } from '../support/services.js';
import { deleteRedisKeys, eventually, isolated, type Isolated } from '../support/stack.js';

let world: Isolated;
let services: RunningServices;
let redis: Redis;
let appKey: string;
let prefix: string;
const subscriptions: SessionEventsSubscription[] = [];

beforeAll(async () => {
  world = await isolated('sdk-session-gap', { database: true });
  services = await startServices(world, ['api']);
  const admin = apiClient(services.apiUrl, world.env['TWOFOLD_ADMIN_KEY']);
  appKey = (await admin<{ key: string }>('POST', '/v1/admin/apps', { appId: 'jira' })).body.key;
  redis = createRedis(world.env['REDIS_URL']!, 'state');
  await waitForRedis(redis);
  prefix = world.config.redis.keyPrefix;
}, 120_000);

afterAll(async () => {
  await Promise.all(subscriptions.splice(0).map((s) => s.close()));
  await services?.stop();
  if (redis) {
    await deleteRedisKeys(redis, `${prefix}*`);
    await redis.quit();
  }
  await world?.cleanup();
});

/** `twofold.session.revoked` events as the broadcaster stores them, named `<tag>-<n>`. */
function revocations(tag: string, count: number) {
  return Array.from({ length: count }, (_, n) => ({
    type: 'twofold.session.revoked',
    json: JSON.stringify({
      specversion: '1.0',
      id: `${tag}-${n}`,
      type: 'twofold.session.revoked',
      source: 'service/session-broadcaster',
      subject: randomUUID(),
      time: new Date().toISOString(),
      datacontenttype: 'application/json',
      data: { session: randomUUID().replaceAll('-', ''), reason: 'logout' },
    }),
  }));
}

/** The stream id just before `id`: a client resuming after it gets `id` first. */
function idBefore(id: string): string {
  const [ms, seq] = id.split('-').map(BigInt) as [bigint, bigint];
  return seq > 0n ? `${ms}-${seq - 1n}` : `${ms - 1n}-18446744073709551615`;
}

/** The frames of GET /v1/session-events from `lastEventId` (heartbeats and retry left out), until `enough`. */
async function framesFrom(lastEventId: string, enough: (frames: string[]) => boolean): Promise<string[]> {
  const stop = new AbortController();
  const res = await fetch(`${services.apiUrl}/v1/session-events`, {
    headers: { authorization: `Bearer ${appKey}`, accept: 'text/event-stream', 'last-event-id': lastEventId },
    signal: AbortSignal.any([stop.signal, AbortSignal.timeout(10_000)]),
  });
  expect(res.status).toBe(200);
  const decoder = new TextDecoder();
  let text = '';
  const frames = () =>
    text
      .split('\n\n')
      .slice(0, -1)
      .filter((f) => !f.startsWith('retry:') && !f.startsWith(':'));
  try {
    for await (const chunk of res.body!) {
      text += decoder.decode(chunk as Uint8Array, { stream: true });
      if (enough(frames())) break;
    }
  } finally {
    stop.abort();
  }
  return frames();
}

const gapData = (frame: string) => JSON.parse(/^data: (.*)$/m.exec(frame)![1]!) as Record<string, unknown>;

describe('GET /v1/session-events after a gap', () => {
  it('sends the gap with the position past it: resuming there gives the next event, and no gap', async () => {
    const ids = await appendSessionEvents(redis, prefix, revocations('raw', 5), 1000);
    // The client saw the first; the second to the fourth are trimmed away.
    await trimSessionEvents(redis, prefix, 1);
    const frames = await framesFrom(ids[0]!, (f) => f.some((x) => x.includes(`id: ${ids[4]}`)));
    expect(frames).toHaveLength(2);
    expect(frames[0]).toMatch(new RegExp(`^id: ${idBefore(ids[4]!)}\nevent: gap\ndata: `));
    expect(gapData(frames[0]!)).toEqual({
      detail: `events after ${ids[0]} are no longer kept; re-check sessions`,
      lastEventId: ids[0],
      nextEventId: ids[4],
    });
    expect(frames[1]).toMatch(new RegExp(`^id: ${ids[4]}\nevent: twofold.session.revoked\n`));

    const resumed = await framesFrom(idBefore(ids[4]!), (f) => f.length >= 1);
    expect(resumed[0]).toMatch(new RegExp(`^id: ${ids[4]}\n`));
  });

  it('sends a gap at an id this stream never issued with the live end as its position, then live events', async () => {
    const never = '99999999999999-0';
    const [end] = await appendSessionEvents(redis, prefix, revocations('end', 1), 1000);
    let appending: Promise<string[]> | undefined;
    const frames = await framesFrom(never, (f) => {
      // Once the gap is in, an event arrives.
      if (f.length === 1) appending ??= appendSessionEvents(redis, prefix, revocations('live', 1), 1000);
      return f.length >= 2;
    });
    const appended = await appending!;
    expect(frames[0]).toMatch(new RegExp(`^id: ${end}\nevent: gap\ndata: `));
    expect(gapData(frames[0]!)).toEqual({
      detail: `events after ${never} are no longer kept; re-check sessions`,
      lastEventId: never,
      resumeAfterEventId: end,
    });
    expect(frames[1]).toMatch(new RegExp(`^id: ${appended[0]}\n`));

    // Resuming there: no gap, and the event that came since.
    const resumed = await framesFrom(end!, (f) => f.length >= 1);
    expect(resumed[0]).toMatch(new RegExp(`^id: ${appended[0]}\nevent: twofold.session.revoked\n`));
  });

  it('sends a gap after which everything was trimmed at the newest id trimmed', async () => {
    const ids = await appendSessionEvents(redis, prefix, revocations('all-gone', 3), 1000);
    await trimSessionEvents(redis, prefix, 0);
    const frames = await framesFrom(ids[0]!, (f) => f.length >= 1);
    expect(frames[0]).toMatch(new RegExp(`^id: ${ids[2]}\nevent: gap\ndata: `));
    expect(gapData(frames[0]!)).toEqual({
      detail: `events after ${ids[0]} are no longer kept; re-check sessions`,
      lastEventId: ids[0],
      resumeAfterEventId: ids[2],
    });

    // Resuming there: no gap; the next event is the first frame.
    let appending: Promise<string[]> | undefined;
    const resumed = await framesFrom(ids[2]!, (f) => {
      appending ??= appendSessionEvents(redis, prefix, revocations('after-all-gone', 1), 1000);
      return f.length >= 1;
    });
    const [next] = await appending!;
    expect(resumed[0]).toMatch(new RegExp(`^id: ${next}\nevent: twofold.session.revoked\n`));
  });
});

describe('GET /v1/session-events after a gap, at a millisecond boundary', () => {
  it("puts the gap before an event of sequence 0 at the previous millisecond's last id", async () => {
    // The client saw the first; the second is trimmed away.
    const [seen] = await appendSessionEvents(redis, prefix, revocations('edge', 2), 1000);
    // The next event opens a millisecond of its own (a second on), with sequence 0.
    const ms = BigInt(seen!.split('-')[0]!) + 1000n;
    const [next] = revocations('edge-next', 1);
    const nextId = (await redis.xadd(
      sessionEventStreamKey(prefix),
      `${ms}-0`,
      'type',
      next!.type,
      'event',
      next!.json,
    ))!;
    expect(nextId).toBe(`${ms}-0`);
    await trimSessionEvents(redis, prefix, 1);
    const frames = await framesFrom(seen!, (f) => f.length >= 2);
    expect(frames[0]).toMatch(new RegExp(`^id: ${ms - 1n}-18446744073709551615\nevent: gap\n`));
    expect(gapData(frames[0]!)).toMatchObject({ lastEventId: seen, nextEventId: nextId });
    // Redis takes that position: resuming there gives the event, and no gap.
    const resumed = await framesFrom(`${ms - 1n}-18446744073709551615`, (f) => f.length >= 1);
    expect(resumed[0]).toMatch(new RegExp(`^id: ${nextId}\n`));
  });
});

describe('subscribeSessionEvents against the api', () => {
  it('hears a gap once: a reconnect before the next event is handled resumes past the gap', async () => {
    const ids = await appendSessionEvents(redis, prefix, revocations('sdk', 4), 1000);
    await trimSessionEvents(redis, prefix, 2); // the second is gone; the third and fourth are kept
    const asked: (string | null)[] = [];
    const countingFetch = ((url: string, init?: RequestInit) => {
      asked.push(new Headers(init?.headers).get('last-event-id'));
      return fetch(url, init);
    }) as typeof fetch;
    const gaps: SessionEventsGap[] = [];
    const handled: string[] = [];
    let failed = false;
    const sub = subscribeSessionEvents({
      baseUrl: services.apiUrl,
      appKey,
      lastEventId: ids[0],
      fetch: countingFetch,
      reconnectDelayMs: 50,
      onGap: (gap) => void gaps.push(gap),
      onEvent: (event) => {
        handled.push(event.id);
        // The store the app records into fails once, on the first event after the gap.
        if (!failed) {
          failed = true;
          throw new Error('store down');
        }
      },
    });
    subscriptions.push(sub);
    await eventually(async () => (handled.includes('sdk-3') ? true : undefined), 15_000, 'sdk-3 handled');
    expect(handled).toEqual(['sdk-2', 'sdk-2', 'sdk-3']);
    expect(gaps).toEqual([{ id: idBefore(ids[2]!), detail: expect.stringContaining(ids[0]!) }]);
    expect(asked).toEqual([ids[0], idBefore(ids[2]!)]);
    expect(sub.lastEventId).toBe(ids[3]);
  });

  it('moves past a gap with no event after it: a reconnect resumes at the live end and hears no gap again', async () => {
    const never = '99999999999998-0';
    const [end] = await appendSessionEvents(redis, prefix, revocations('sdk-end', 1), 1000);
    const asked: (string | null)[] = [];
    const countingFetch = ((url: string, init?: RequestInit) => {
      asked.push(new Headers(init?.headers).get('last-event-id'));
      return fetch(url, init);
    }) as typeof fetch;
    const gaps: SessionEventsGap[] = [];
    const handled: string[] = [];
    let opened = 0;
    const sub = subscribeSessionEvents({
      baseUrl: services.apiUrl,
      appKey,
      lastEventId: never,
      fetch: countingFetch,
      reconnectDelayMs: 50,
      onOpen: () => void opened++,
      onGap: (gap) => void gaps.push(gap),
      onEvent: (event) => void handled.push(event.id),
    });
    subscriptions.push(sub);
    await eventually(async () => (gaps.length > 0 ? true : undefined), 10_000, 'the gap');
    expect(gaps).toEqual([{ id: end, detail: expect.stringContaining(never) }]);
    expect(sub.lastEventId).toBe(end);
    // Reconnect before any event came: the position is the live end, no gap again.
    sub.reconnect();
    await eventually(async () => (opened >= 2 ? true : undefined), 10_000, 'the reconnect');
    await appendSessionEvents(redis, prefix, revocations('sdk-after-end', 1), 1000);
    await eventually(async () => (handled.length > 0 ? true : undefined), 10_000, 'the next event');
    expect(asked).toEqual([never, end]);
    expect(gaps).toHaveLength(1);
    expect(handled).toEqual(['sdk-after-end-0']);
  });

  it('stops on a malformed position with SessionEventsPositionError, after one request', async () => {
    const asked: (string | null)[] = [];
    const countingFetch = ((url: string, init?: RequestInit) => {
      asked.push(new Headers(init?.headers).get('last-event-id'));
      return fetch(url, init);
    }) as typeof fetch;
    const errors: Error[] = [];
    const sub = subscribeSessionEvents({
      baseUrl: services.apiUrl,
      appKey,
      lastEventId: 'yesterday',
      fetch: countingFetch,
      reconnectDelayMs: 10,
      onError: (err) => void errors.push(err),
      onEvent: () => {},
    });
    subscriptions.push(sub);
    await eventually(async () => (errors.length > 0 ? true : undefined), 10_000, 'an error');
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(asked).toEqual(['yesterday']);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(SessionEventsPositionError);
    expect(errors[0]).toMatchObject({
      lastEventId: 'yesterday',
      detail: 'Last-Event-ID must be an event id this stream sent (like 1764320400000-0)',
    });
  });
});
