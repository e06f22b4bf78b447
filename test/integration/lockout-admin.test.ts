// Admin lockout routes against real Redis and Kafka (the route built in-process):
// (1) an unlock is announced before it lifts: when Kafka refuses, nothing is lifted and the
// answer is 503 problem+json, and the retry lifts and announces (before, the lock was gone,
// the answer a 500, the retry a 404, and the lift never announced);
// (2) the list pages by position, not offset: lockouts that end or are lifted between pages
// do not make the next page skip live ones.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import Fastify from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { createEventProducer, type EventProducer } from '@twofold/kafka';
import { deterministicEventId, resolveLockoutRules } from '@twofold/lockout';
import { createRedis, waitForRedis, type Redis } from '@twofold/redis';
import {
  createLockoutStore,
  liftLockout,
  listLockouts,
  LockoutCursorError,
  readLockState,
  type ImposedLockout,
  type LockoutImposition,
} from '@twofold/state';
import type { AppsRepository } from '@twofold/store';
import { createAuthenticator } from '../../services/api/src/auth.js';
import { installProblemHandlers } from '../../services/api/src/problem.js';
import { adminLockoutsRoute } from '../../services/api/src/routes/admin-lockouts.route.js';
import { lockoutStoreSettings } from '../../services/lockout-detector/src/lockout-detector.js';
import { eventually, isolated, type Isolated } from '../support/stack.js';
import { readTopic } from '../support/topic-reader.js';

const ADMIN_KEY = 'test-admin-key-lockout-admin';
let world: Isolated;
let redis: Redis;
let store: ReturnType<typeof createLockoutStore>;

beforeAll(async () => {
  world = await isolated('lockout-admin');
  redis = createRedis(world.config.redis.url, 'state', { commandTimeout: 5_000 });
  await waitForRedis(redis);
  store = createLockoutStore(redis, prefix(), lockoutStoreSettings(resolveLockoutRules({})));
});

afterAll(async () => {
  const keys = await redis.keys(`${prefix()}*`);
  for (let i = 0; i < keys.length; i += 1000) await redis.del(...keys.slice(i, i + 1000));
  await redis.quit();
  await world?.cleanup();
});

const prefix = () => world.config.redis.keyPrefix;

async function adminApi(producer: EventProducer) {
  const app = Fastify().withTypeProvider<TypeBoxTypeProvider>();
  installProblemHandlers(app);
  const auth = createAuthenticator({ apps: {} as AppsRepository, adminKey: ADMIN_KEY });
  await app.register(adminLockoutsRoute({ auth, redis, keyPrefix: prefix(), producer }));
  const call = (method: 'GET' | 'DELETE', url: string) =>
    app.inject({ method, url, headers: { authorization: `Bearer ${ADMIN_KEY}` } });
  return { app, call };
}

const pairLock = (username: string, over: Partial<LockoutImposition> = {}): LockoutImposition => ({
  target: { kind: 'user_ip', username, ip: '198.51.100.3' },
  causeId: randomUUID(),
  scope: 'user_ip',
  key: `${username}|198.51.100.3`,
  mode: 'deny',
  rule: 'user_ip_backoff',
  failures: 5,
  schedule: [60_000],
  levelMemoryMs: 3_600_000,
  permanentAfter: 0,
  ...over,
});

describe('admin unlock', () => {
  it('lifts nothing when it cannot be announced (503); the retry lifts and announces', async () => {
    const now = Date.now();
    const [imposed] = await store.impose(
      [
        {
          target: { kind: 'user', username: 'frank' },
          causeId: randomUUID(),
          scope: 'user',
          key: 'frank',
          mode: 'deny',
          rule: 'consecutive_failures',
          failures: 10,
          schedule: [600_000],
          levelMemoryMs: 3_600_000,
          permanentAfter: 0,
        },
      ],
      now,
    );
    const lockId = imposed!.record.lockId;
    const locked = async () => (await readLockState(redis, prefix(), 'frank', '192.0.2.1')).userLock;
    expect(await locked()).not.toBeNull();

    // Kafka out of reach: a producer that never connected refuses to send.
    const unconnected = createEventProducer(world.kafka, { topics: world.topics, logger: world.logger });
    const down = await adminApi(unconnected);
    const refused = await down.call('DELETE', '/v1/admin/lockouts/user/frank');
    expect(refused.statusCode, refused.body).toBe(503);
    expect(refused.headers['content-type']).toContain('application/problem+json');
    expect(refused.json()).toMatchObject({
      status: 503,
      detail: expect.stringMatching(/nothing was lifted/),
    });
    expect(await locked()).not.toBeNull();
    await down.app.close();

    const security = await readTopic(world.kafka, world.topics.security);
    const admin = await readTopic(world.kafka, world.topics.admin);
    const up = await adminApi(world.producer);
    const retried = await up.call('DELETE', '/v1/admin/lockouts/user/frank');
    expect(retried.statusCode, retried.body).toBe(200);
    expect(retried.json()).toMatchObject({ lifted: [{ lockId, scope: 'user', key: 'frank' }] });
    expect(await locked()).toBeNull();
    const announced = await eventually(
      async () => {
        const lifted = security.json<{ id: string; type: string; data: { by: string; key: string } }>();
        const unlocks = admin.json<{ type: string; data: { lifted: { lockId: string }[] } }>();
        return lifted.length > 0 && unlocks.length > 0 ? { lifted, unlocks } : undefined;
      },
      30_000,
      'the unlock announced on the security and admin topics',
    );
    expect(announced.lifted).toEqual([
      expect.objectContaining({
        id: deterministicEventId('lockout.lifted', lockId),
        type: 'twofold.lockout.lifted',
        data: expect.objectContaining({ by: 'admin', key: 'frank' }),
      }),
    ]);
    expect(announced.unlocks).toEqual([
      expect.objectContaining({
        type: 'twofold.admin.unlock',
        data: expect.objectContaining({ lifted: [expect.objectContaining({ lockId })] }),
      }),
    ]);
    expect((await up.call('DELETE', '/v1/admin/lockouts/user/frank')).statusCode).toBe(404);
    await Promise.all([security.stop(), admin.stop(), up.app.close()]);
  });

  it('lifts only the lockouts announced', async () => {
    const [imposed] = await store.impose([pairLock('grace')], Date.now());
    expect(
      await liftLockout(redis, prefix(), 'user_ip', 'grace|198.51.100.3', { lockIds: ['other'] }),
    ).toEqual([]);
    expect((await readLockState(redis, prefix(), 'grace', '198.51.100.3')).userIpLock).not.toBeNull();
    const lifted = await liftLockout(redis, prefix(), 'user_ip', 'grace|198.51.100.3', {
      lockIds: [imposed!.record.lockId],
    });
    expect(lifted.map((r) => r.lockId)).toEqual([imposed!.record.lockId]);
    expect((await readLockState(redis, prefix(), 'grace', '198.51.100.3')).userIpLock).toBeNull();
  });
});

describe('admin list', () => {
  it('skips no live lockout when lockouts end or are lifted between pages', async () => {
    const T = Date.now();
    const names = (group: string) =>
      Array.from({ length: 10 }, (_, i) => `list-${group}${String(i).padStart(2, '0')}`);
    // A: 10 ending together at T + 60 s; B: 10 at T + 120 s; C: 5 permanent (ties everywhere).
    const a = await store.impose(
      names('a').map((n) => pairLock(n, { schedule: [60_000] })),
      T,
    );
    const b = await store.impose(
      names('b').map((n) => pairLock(n, { schedule: [120_000] })),
      T,
    );
    const permanent = names('c')
      .slice(0, 5)
      .map((n) => pairLock(n, { permanentAfter: 1 }));
    const first = await store.impose(permanent, T);
    for (const done of first) await redis.del(`${done!.ref.base}:${done!.ref.lockSub}`);
    const c = await store.impose(
      permanent.map((p) => ({ ...p, causeId: randomUUID() })),
      T,
    );
    expect(c.every((done) => done!.record.until === null)).toBe(true);

    // The index order: end time, then key (bytes).
    const ordered = (group: (ImposedLockout | undefined)[]) =>
      group
        .map((done) => ({ id: done!.record.lockId, member: `${done!.ref.base}:${done!.ref.lockSub}` }))
        .sort((x, y) => Buffer.compare(Buffer.from(x.member), Buffer.from(y.member)))
        .map((x) => x.id);
    const expected = [...ordered(a), ...ordered(b), ...ordered(c)];

    const ids = (page: { lockouts: { lockId: string }[] }) => page.lockouts.map((l) => l.lockId);
    const page1 = await listLockouts(redis, prefix(), { limit: 7, now: T });
    expect(ids(page1)).toEqual(expected.slice(0, 7));
    // The last entry of page 1 is lifted by an admin before page 2 is read.
    const last = page1.lockouts.at(-1)!;
    expect(await liftLockout(redis, prefix(), last.scope, last.key)).toHaveLength(1);
    const page2 = await listLockouts(redis, prefix(), { limit: 7, now: T, cursor: page1.nextCursor! });
    expect(ids(page2)).toEqual(expected.slice(7, 14));
    // Group A ends before page 3 is read.
    const later = T + 60_001;
    const page3 = await listLockouts(redis, prefix(), { limit: 7, now: later, cursor: page2.nextCursor! });
    expect(ids(page3)).toEqual(expected.slice(14, 21));
    const page4 = await listLockouts(redis, prefix(), { limit: 7, now: later, cursor: page3.nextCursor! });
    expect(ids(page4)).toEqual(expected.slice(21));
    expect(page4.nextCursor).toBeUndefined();
  });

  it('starts after the position even when its entry now holds a newer lockout', async () => {
    const own = `${prefix()}moved:`;
    const moved = createLockoutStore(redis, own, lockoutStoreSettings(resolveLockoutRules({})));
    const T = Date.now();
    const locks = ['m0', 'm1', 'm2', 'm3'].map((n) => pairLock(n));
    const imposed = await moved.impose(locks, T);
    const byMember = imposed
      .map((done, i) => ({ i, member: `${done!.ref.base}:${done!.ref.lockSub}` }))
      .sort((x, y) => Buffer.compare(Buffer.from(x.member), Buffer.from(y.member)))
      .map((x) => x.i);
    const ids = (page: { lockouts: { lockId: string }[] }) => page.lockouts.map((l) => l.lockId);
    const reimpose = async (i: number, schedule: number[]) => {
      await liftLockout(redis, own, 'user_ip', locks[i]!.key);
      const [again] = await moved.impose([{ ...locks[i]!, causeId: randomUUID(), schedule }], T);
      return again!.record.lockId;
    };
    const [w, x, y, z] = byMember as [number, number, number, number];

    const page1 = await listLockouts(redis, own, { limit: 2, now: T });
    expect(ids(page1)).toEqual([imposed[w]!.record.lockId, imposed[x]!.record.lockId]);
    // The position's entry now ends sooner (before the position): the next page is unchanged.
    await reimpose(x, [30_000]);
    const page2 = await listLockouts(redis, own, { limit: 2, now: T, cursor: page1.nextCursor! });
    expect(ids(page2)).toEqual([imposed[y]!.record.lockId, imposed[z]!.record.lockId]);
    // Ends later (after the position): the newer lockout comes next.
    const later = await reimpose(z, [120_000]);
    const page3 = await listLockouts(redis, own, { limit: 2, now: T, cursor: page2.nextCursor! });
    expect(ids(page3)).toEqual([later]);
    expect(page3.nextCursor).toBeUndefined();
  });

  it('refuses an offset cursor of the earlier list with a 400 that says to start again', async () => {
    await expect(listLockouts(redis, prefix(), { cursor: '10' })).rejects.toBeInstanceOf(LockoutCursorError);
    const { app, call } = await adminApi(world.producer);
    const res = await call('GET', '/v1/admin/lockouts?cursor=10');
    expect(res.statusCode, res.body).toBe(400);
    expect(res.headers['content-type']).toContain('application/problem+json');
    expect(res.json<{ detail: string }>().detail).toMatch(/start again/);
    await app.close();
  });
});
