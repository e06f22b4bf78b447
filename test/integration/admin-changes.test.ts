// Admin changes to the policy and to apps stand only when audited: each is announced on the
// admin topic inside its Postgres transaction and committed only once announced. One that
// cannot be announced (Kafka) is rolled back and answered 503, so the retry applies and
// audits it. And a key rotated through one api replica is refused by every other within
// about a second (the apps version they poll), not after their 30 s key cache.
import Fastify from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashSessionToken } from '@twofold/contracts';
import { createEventProducer, type EventProducer } from '@twofold/kafka';
import {
  createAppsRepository,
  createPolicyRepository,
  createPool,
  hashApiKey,
  type AppsRepository,
  type PolicyRepository,
  type Pool,
} from '@twofold/store';
import { createPolicySnapshot, type PolicySnapshot } from '@twofold/verification';
import { createAuthenticator } from '../../services/api/src/auth.js';
import { installProblemHandlers } from '../../services/api/src/problem.js';
import { adminAppsRoute } from '../../services/api/src/routes/admin-apps.route.js';
import { adminPolicyRoute } from '../../services/api/src/routes/admin-policy.route.js';
import { apiClient, startServices, type RunningServices } from '../support/services.js';
import { eventually, isolated, type Isolated } from '../support/stack.js';
import { readTopic } from '../support/topic-reader.js';

type AdminEvent = { id: string; type: string; subject: string; data: Record<string, unknown> };
type Problem = { status: number; detail: string };

describe('admin changes that cannot be audited', () => {
  let world: Isolated;
  let pool: Pool;
  let policies: PolicyRepository;
  let apps: AppsRepository;
  let snapshot: PolicySnapshot;
  let adminKey: string;
  let unconnected: EventProducer;

  beforeAll(async () => {
    world = await isolated('admin-changes', { database: true });
    pool = createPool({ url: world.config.database.url, schema: world.config.database.schema, max: 4 });
    policies = createPolicyRepository(pool);
    apps = createAppsRepository(pool);
    snapshot = createPolicySnapshot({ repository: policies, logger: world.logger });
    await snapshot.reload(); // no timer: the snapshot moves only when the routes reload it
    adminKey = world.env['TWOFOLD_ADMIN_KEY']!;
    // Kafka out of reach: a producer that never connected refuses to send.
    unconnected = createEventProducer(world.kafka, { topics: world.topics, logger: world.logger });
  }, 60_000);

  afterAll(async () => {
    await pool?.end();
    await world?.cleanup();
  });

  /** The admin policy and apps routes, on the real Postgres, announcing through `producer`. */
  async function api(producer: EventProducer) {
    const app = Fastify().withTypeProvider<TypeBoxTypeProvider>();
    installProblemHandlers(app);
    const auth = createAuthenticator({ apps, adminKey });
    await app.register(adminPolicyRoute({ auth, policies, snapshot, producer }));
    await app.register(adminAppsRoute({ auth, apps, producer }));
    await app.ready();
    return async <T = Record<string, unknown>>(
      method: 'PUT' | 'POST' | 'DELETE',
      url: string,
      body?: object,
    ) => {
      const res = await app.inject({
        method,
        url,
        headers: { authorization: `Bearer ${adminKey}` },
        ...(body ? { payload: body } : {}),
      });
      await app.close();
      return {
        status: res.statusCode,
        type: res.headers['content-type'],
        body: (res.body ? res.json<T>() : undefined) as T,
      };
    };
  }

  function expectNothingChanged(res: { status: number; type: unknown; body: Problem }) {
    expect(res.status, JSON.stringify(res.body)).toBe(503);
    expect(res.type).toMatch(/^application\/problem\+json/);
    expect(res.body.detail).toMatch(
      /could not be audited.*nothing was (changed|registered or rotated): try again/,
    );
  }

  it('policy: a change that cannot be announced is rolled back and 503; the retry applies and audits it', async () => {
    const admin = await readTopic(world.kafka, world.topics.admin);
    const before = await policies.load();

    // Global settings.
    expectNothingChanged(
      await (
        await api(unconnected)
      )<Problem>('PUT', '/v1/admin/policy', { defaultMode: 'optional' }),
    );
    const after = await policies.load();
    expect(after.settings).toEqual(before.settings);
    expect(after.version).toBe(before.version);

    const applied = await (await api(world.producer))('PUT', '/v1/admin/policy', { defaultMode: 'optional' });
    expect(applied.status, JSON.stringify(applied.body)).toBe(200);
    expect((await policies.load()).settings).toMatchObject({ defaultMode: 'optional' });
    // Reloaded after the commit: this replica's copy has the change at once.
    expect(snapshot.current()!.settings.defaultMode).toBe('optional');
    expect(snapshot.current()!.version).toBe((await policies.load()).version);

    // A rule: not set when refused; set (and seen) on the retry.
    expectNothingChanged(
      await (
        await api(unconnected)
      )<Problem>('PUT', '/v1/admin/policy/users/Kim', { mode: 'exempt' }),
    );
    expect((await policies.load()).rules).toEqual([]);
    expect(
      (await (await api(world.producer))('PUT', '/v1/admin/policy/users/Kim', { mode: 'exempt' })).status,
    ).toBe(200);
    expect(snapshot.current()!.userRules.get('kim')).toBe('exempt');

    // Removing it: kept when refused; removed on the retry, and then there is nothing to remove.
    expectNothingChanged(await (await api(unconnected))<Problem>('DELETE', '/v1/admin/policy/users/kim'));
    expect((await policies.load()).rules).toMatchObject([{ kind: 'user', subject: 'kim', mode: 'exempt' }]);
    expect((await (await api(world.producer))('DELETE', '/v1/admin/policy/users/kim')).status).toBe(204);
    expect((await policies.load()).rules).toEqual([]);
    expect(snapshot.current()!.userRules.has('kim')).toBe(false);
    expect((await (await api(unconnected))('DELETE', '/v1/admin/policy/users/kim')).status).toBe(404);

    // Exactly the three changes that stand were audited, each once.
    const events = await eventually(
      async () => {
        const seen = admin.json<AdminEvent>();
        return seen.length >= 3 ? seen : undefined;
      },
      30_000,
      'the policy changes on the admin topic',
    );
    expect(events.map((e) => [e.type, e.data])).toEqual([
      [
        'twofold.admin.policy_changed',
        expect.objectContaining({
          actor: 'admin',
          settings: expect.objectContaining({ defaultMode: 'optional' }),
        }),
      ],
      ['twofold.admin.policy_rule_set', { actor: 'admin', kind: 'user', subject: 'kim', mode: 'exempt' }],
      ['twofold.admin.policy_rule_removed', { actor: 'admin', kind: 'user', subject: 'kim' }],
    ]);
    await admin.stop();
  }, 60_000);

  it('apps: a registration or key rotation that cannot be announced changes nothing; the retry does and audits it', async () => {
    const admin = await readTopic(world.kafka, world.topics.admin);

    expectNothingChanged(
      await (
        await api(unconnected)
      )<Problem>('POST', '/v1/admin/apps', { appId: 'jira' }),
    );
    expect(await apps.get('jira')).toBeUndefined();

    const registered = await (
      await api(world.producer)
    )<{ key: string }>('POST', '/v1/admin/apps', {
      appId: 'jira',
      name: 'Jira',
    });
    expect(registered.status, JSON.stringify(registered.body)).toBe(201);
    const oldKey = registered.body.key;

    // A rotation (the key leaked) that cannot be announced: the old key still stands, the new one does not.
    const refused = await (
      await api(unconnected)
    )<Problem>('POST', '/v1/admin/apps', { appId: 'jira', name: 'Jira' });
    expectNothingChanged(refused);
    expect(await apps.findByKeyHash(hashApiKey(oldKey))).toMatchObject({ appId: 'jira' });

    const rotated = await (
      await api(world.producer)
    )<{ key: string }>('POST', '/v1/admin/apps', {
      appId: 'jira',
      name: 'Jira',
    });
    expect(rotated.status, JSON.stringify(rotated.body)).toBe(201);
    expect(await apps.findByKeyHash(hashApiKey(oldKey))).toBeUndefined();
    expect(await apps.findByKeyHash(hashApiKey(rotated.body.key))).toMatchObject({ appId: 'jira' });

    const events = await eventually(
      async () => {
        const seen = admin.json<AdminEvent>().filter((e) => e.type.startsWith('twofold.admin.app_'));
        return seen.length >= 2 ? seen : undefined;
      },
      30_000,
      'the app changes on the admin topic',
    );
    const data = { actor: 'admin', appId: 'jira', name: 'Jira', webhookUrl: null, origins: [] };
    expect(events.map((e) => [e.type, e.subject, e.data])).toEqual([
      ['twofold.admin.app_registered', 'admin', data],
      ['twofold.admin.app_key_rotated', 'admin', data],
    ]);
    // The key is never announced, not even hashed.
    const text = JSON.stringify(events);
    for (const key of [oldKey, rotated.body.key]) {
      expect(text).not.toContain(key);
      expect(text).not.toContain(hashApiKey(key));
    }
    await admin.stop();
  }, 60_000);
});

describe('a rotated app key across api replicas', () => {
  let world: Isolated;
  let first: RunningServices; // api A
  let second: RunningServices; // api B, another replica

  beforeAll(async () => {
    world = await isolated('admin-changes-replicas', { database: true });
    first = await startServices(world, ['api']);
    second = await startServices(world, ['api']);
  }, 120_000);

  afterAll(async () => {
    const codes = new Map([...((await second?.stop()) ?? []), ...((await first?.stop()) ?? [])]);
    await world?.cleanup();
    for (const [name, code] of codes) expect(code, `${name} exit code after SIGTERM`).toBe(0);
  });

  it('is refused by the other replica within about a second of the rotation', async () => {
    const admin = apiClient(first.apiUrl, world.env['TWOFOLD_ADMIN_KEY']);
    const registered = await admin<{ key: string }>('POST', '/v1/admin/apps', { appId: 'wiki' });
    expect(registered.status).toBe(201);
    const oldKey = registered.body.key;
    const session = { 'x-twofold-session': hashSessionToken('a-token') };
    const asApp = (via: RunningServices, key: string) =>
      apiClient(via.apiUrl, key)('GET', '/v1/sessions/current', undefined, session);

    // B keeps the old key (its cache holds it for 30 s).
    expect((await asApp(second, oldKey)).status).toBe(200);
    expect((await asApp(second, oldKey)).status).toBe(200);

    const rotated = await admin<{ key: string }>('POST', '/v1/admin/apps', { appId: 'wiki' });
    expect(rotated.status).toBe(201);
    const rotatedAt = Date.now();
    // A, which rotated it, refuses the old key at once.
    expect((await asApp(first, oldKey)).status).toBe(401);

    const deadline = rotatedAt + 2_000;
    let status = 0;
    while (Date.now() < deadline) {
      status = (await asApp(second, oldKey)).status;
      if (status === 401) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(status, 'api B still accepts the rotated key 2 s after the rotation').toBe(401);
    expect((await asApp(second, rotated.body.key)).status).toBe(200);
  }, 30_000);
});
