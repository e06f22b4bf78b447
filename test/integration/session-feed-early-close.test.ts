// An SSE client that disconnects while the api is still authenticating it (the app key
// lookup in Postgres) must not leave a feed listener and heartbeat behind: the request's
// `close` had already fired before the route listened for it, so nothing ever cleaned up.
import { randomUUID } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import Fastify from 'fastify';
import { createRedis, waitForRedis, type Redis } from '@twofold/redis';
import { createSessionEventFeed, type SessionEventFeed } from '@twofold/state';
import type { AppRecord, AppsRepository } from '@twofold/store';
import { createAuthenticator } from '../../services/api/src/auth.js';
import { sessionEventsRoute } from '../../services/api/src/routes/session-events.route.js';
import { stackEnv } from '../support/stack.js';

const prefix = `t:session-feed-close-${randomUUID().slice(0, 8)}:`;
const clients: Redis[] = [];

afterAll(async () => {
  for (const client of clients) client.disconnect();
});

/** The real feed, counting the subscriptions that are held (subscribed, not yet unsubscribed). */
function countingFeed(feed: SessionEventFeed) {
  const counts = { held: 0, settled: 0 };
  const wrapped: SessionEventFeed = {
    ...feed,
    async subscribe(afterId, listener, onGap) {
      const sub = await feed.subscribe(afterId, listener, onGap);
      counts.held++;
      counts.settled++;
      let done = false;
      return {
        gap: sub.gap,
        unsubscribe() {
          if (!done) counts.held--;
          done = true;
          sub.unsubscribe();
        },
      };
    },
  };
  return { feed: wrapped, counts };
}

describe('session events stream closed during authentication', () => {
  it('holds no feed listener for a client that left before its key was looked up', async () => {
    const url = stackEnv()['REDIS_URL']!;
    const redis = createRedis(url, 'state');
    const reader = createRedis(url, 'queue');
    clients.push(redis, reader);
    await waitForRedis(redis);
    const real = createSessionEventFeed({ reader, redis, prefix, blockMs: 200 });
    await real.start();
    const { feed, counts } = countingFeed(real);

    // The key lookup (Postgres in the api) waits until the test lets it answer.
    let entered = () => {};
    const lookupStarted = new Promise<void>((resolve) => (entered = resolve));
    let release = () => {};
    const lookupAnswers = new Promise<void>((resolve) => (release = resolve));
    const app: AppRecord = { appId: 'a1', name: 'a1', webhookUrl: null, origins: [], createdAt: new Date() };
    const apps = {
      async findByKeyHash() {
        entered();
        await lookupAnswers;
        return app;
      },
    } as unknown as AppsRepository;
    const auth = createAuthenticator({ apps, adminKey: `admin-${randomUUID()}`, cacheMs: 0 });

    const api = Fastify();
    await api.register(sessionEventsRoute({ auth, feed, heartbeatMs: 20 }));
    await api.listen({ port: 0, host: '127.0.0.1' });
    try {
      const { port } = api.server.address() as AddressInfo;
      const serverSocketClosed = new Promise<void>((resolve) =>
        api.server.once('connection', (socket) => socket.once('close', () => resolve())),
      );
      const before = counts.held;
      const req = httpRequest({
        host: '127.0.0.1',
        port,
        path: '/v1/session-events',
        headers: { authorization: 'Bearer some-app-key', accept: 'text/event-stream' },
      });
      req.on('error', () => {});
      req.end();
      await lookupStarted;
      req.destroy();
      await serverSocketClosed;
      release();

      // The handler runs on (hijack, subscribe) after the client left; it must let go at once.
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(counts.held).toBe(before);
    } finally {
      release();
      await api.close();
      await real.stop();
    }
  });
});
