// Webhook settings that must never stop the session broadcaster or go unaudited:
// - a stored webhook URL that `new URL()` rejects (JSON-schema `format: uri` let it in) is
//   skipped by the dispatcher, not fatal to its start or to the other apps' lanes;
// - a first read of the apps that fails (Postgres unreachable) does not fail start();
// - the admin api refuses such URLs (and non-http ones, and credentials) with a 400;
// - a webhook secret rotation that cannot be announced on the admin topic changes nothing.
import Fastify from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEvent } from '@twofold/contracts';
import { createEventProducer, type EventProducer } from '@twofold/kafka';
import type { WebhookDeadLetters } from '@twofold/state';
import {
  createAppsRepository,
  createPool,
  hashApiKey,
  type AppsRepository,
  type Pool,
  type WebhookTarget,
} from '@twofold/store';
import { createAuthenticator } from '../../services/api/src/auth.js';
import { installProblemHandlers } from '../../services/api/src/problem.js';
import { adminAppsRoute } from '../../services/api/src/routes/admin-apps.route.js';
import { adminWebhooksRoute } from '../../services/api/src/routes/admin-webhooks.route.js';
import type { SessionAnnouncement } from '../../services/session-broadcaster/src/session-change.js';
import { createWebhookDispatcher } from '../../services/session-broadcaster/src/webhook-dispatcher.js';
import { eventually, isolated, type Isolated } from '../support/stack.js';
import { readTopic } from '../support/topic-reader.js';
import { startReceiver, type AppReceiver } from './session-world.js';

type Problem = { status: number; detail: string };

let world: Isolated;
let pool: Pool;
let apps: AppsRepository;
let adminKey: string;
let unconnected: EventProducer;
const receivers: AppReceiver[] = [];

beforeAll(async () => {
  world = await isolated('session-webhook-admin-safety', { database: true });
  pool = createPool({ url: world.config.database.url, schema: world.config.database.schema, max: 4 });
  apps = createAppsRepository(pool);
  adminKey = world.env['TWOFOLD_ADMIN_KEY']!;
  // Kafka out of reach: a producer that never connected refuses to send.
  unconnected = createEventProducer(world.kafka, { topics: world.topics, logger: world.logger });
}, 60_000);

afterAll(async () => {
  for (const r of receivers) await r.close();
  await pool?.end();
  await world?.cleanup();
});

const settings = { attempts: 2, backoffMs: 100, timeoutMs: 1_000, concurrency: 2, refreshMs: 200 };

function announcement(n: number): SessionAnnouncement {
  const session = n.toString(16).padStart(64, '0');
  return createEvent('twofold.session.validated', 'service/session-broadcaster', 'kim', {
    session,
    username: 'kim',
    appId: 'jira',
    verifiedAt: new Date().toISOString(),
    expiresAt: new Date(Date.now() + 3_600_000).toISOString(),
  });
}

function dispatcher(targets: () => Promise<WebhookTarget[]>) {
  return createWebhookDispatcher({
    redisUrl: world.config.redis.url,
    keyPrefix: `${world.config.redis.keyPrefix}${Math.random().toString(36).slice(2, 8)}:`,
    targets,
    settings,
    logger: world.logger,
    metrics: world.metrics,
  });
}

describe('the session broadcaster’s webhook dispatcher', () => {
  it('skips a stored webhook URL that does not parse; starts and delivers to the other apps', async () => {
    const jira = await startReceiver('jira');
    receivers.push(jira);
    // Stored through the repository, as the admin api let them in before it checked them;
    // both sort before jira, whose lane must still open.
    await apps.upsert({
      appId: 'aaa-port',
      name: 'a',
      keyHash: hashApiKey('k1'),
      webhookUrl: 'http://jira:80800/hook',
    });
    await apps.upsert({
      appId: 'aab-ip',
      name: 'b',
      keyHash: hashApiKey('k2'),
      webhookUrl: 'http://999.1.1.1/hook',
    });
    await apps.upsert({ appId: 'jira', name: 'Jira', keyHash: hashApiKey('k3'), webhookUrl: jira.url });

    const webhooks = dispatcher(() => apps.webhookTargets());
    try {
      await webhooks.start(); // before the fix: TypeError: Invalid URL
      expect(webhooks.isReady()).toBe(true);
      const event = announcement(1);
      await webhooks.enqueue([event]);
      await eventually(
        async () => jira.deliveries.find((d) => d.event.id === event.id),
        10_000,
        'jira’s delivery',
      );
    } finally {
      await webhooks.stop();
      await pool.query(`DELETE FROM apps WHERE app_id IN ('aaa-port', 'aab-ip')`);
    }
  });

  it('starts when the first read of the apps fails, and picks them up on a later refresh', async () => {
    const jira = receivers[0]!;
    let reachable = false;
    const webhooks = dispatcher(async () => {
      if (!reachable) throw new Error('connect ECONNREFUSED 127.0.0.1:5432');
      return apps.webhookTargets();
    });
    try {
      await webhooks.start(); // before the fix: rejects with the read's error
      expect(webhooks.isReady()).toBe(false);
      reachable = true;
      await eventually(async () => (webhooks.isReady() ? true : undefined), 5_000, 'a later refresh');
      const event = announcement(2);
      await webhooks.enqueue([event]);
      await eventually(
        async () => jira.deliveries.find((d) => d.event.id === event.id),
        10_000,
        'jira’s delivery',
      );
    } finally {
      await webhooks.stop();
    }
  });
});

/** The admin apps and webhook routes, on the real Postgres, announcing through `producer`. */
async function api(producer: EventProducer) {
  const app = Fastify().withTypeProvider<TypeBoxTypeProvider>();
  installProblemHandlers(app);
  const auth = createAuthenticator({ apps, adminKey });
  await app.register(adminAppsRoute({ auth, apps, producer }));
  await app.register(adminWebhooksRoute({ auth, apps, producer, deadLetters: {} as WebhookDeadLetters }));
  await app.ready();
  return async <T = Record<string, unknown>>(url: string, body: object) => {
    const res = await app.inject({
      method: 'POST',
      url,
      headers: { authorization: `Bearer ${adminKey}` },
      payload: body,
    });
    await app.close();
    return { status: res.statusCode, type: res.headers['content-type'], body: res.json<T>() };
  };
}

describe('registering a webhook URL', () => {
  it.each([
    ['http://jira:80800/hook', /not a valid URL/],
    ['http://999.1.1.1/hook', /not a valid URL/],
    ['http://1.2.3.4.5/x', /not a valid URL/],
    ['https://hook:s3cret@jira.example/hook', /must not carry credentials/],
    ['http://user@jira.example/hook', /must not carry credentials/],
  ])('refuses %s with a 400 that names the problem, and stores nothing', async (webhookUrl, detail) => {
    const res = await (await api(world.producer))<Problem>('/v1/admin/apps', { appId: 'bamboo', webhookUrl });
    expect(res.status, JSON.stringify(res.body)).toBe(400);
    expect(res.type).toMatch(/^application\/problem\+json/);
    expect(res.body.detail).toMatch(detail);
    expect(await apps.get('bamboo')).toBeUndefined();
  });

  it('takes a good http(s) URL', async () => {
    const res = await (
      await api(world.producer)
    )('/v1/admin/apps', { appId: 'bamboo', webhookUrl: 'https://bamboo.example:8443/twofold/hook?x=1' });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    expect(await apps.get('bamboo')).toMatchObject({
      webhookUrl: 'https://bamboo.example:8443/twofold/hook?x=1',
    });
  });
});

describe('rotating a webhook secret that cannot be audited', () => {
  it('changes nothing and is 503; the retry rotates and audits it', async () => {
    const admin = await readTopic(world.kafka, world.topics.admin);
    const before = await apps.webhookSecret('jira');
    expect(before).toMatch(/^whsec_/);

    const refused = await (
      await api(unconnected)
    )<Problem>('/v1/admin/apps/jira/webhook-secret/rotate', { graceSeconds: 60 });
    expect(refused.status, JSON.stringify(refused.body)).toBe(503);
    expect(refused.type).toMatch(/^application\/problem\+json/);
    expect(refused.body.detail).toMatch(/could not be audited.*nothing was changed: try again/);
    expect(await apps.webhookSecret('jira')).toBe(before);
    const [target] = (await apps.webhookTargets()).filter((t) => t.appId === 'jira');
    expect(target!.previousWebhookSecret).toBeUndefined();

    const rotated = await (
      await api(world.producer)
    )<{ secret: string }>('/v1/admin/apps/jira/webhook-secret/rotate', { graceSeconds: 60 });
    expect(rotated.status, JSON.stringify(rotated.body)).toBe(200);
    expect(await apps.webhookSecret('jira')).toBe(rotated.body.secret);

    const events = await eventually(
      async () => {
        const seen = admin
          .json<{ type: string; data: Record<string, unknown> }>()
          .filter((e) => e.type === 'twofold.admin.webhook_secret_rotated');
        return seen.length >= 1 ? seen : undefined;
      },
      30_000,
      'the rotation on the admin topic',
    );
    // Only the rotation that stands was announced, and never the secret.
    await new Promise((r) => setTimeout(r, 500));
    expect(
      admin.json<{ type: string }>().filter((e) => e.type === 'twofold.admin.webhook_secret_rotated'),
    ).toHaveLength(1);
    expect(events[0]!.data).toMatchObject({ actor: 'admin', appId: 'jira' });
    expect(JSON.stringify(events[0])).not.toContain(rotated.body.secret);
    await admin.stop();
  }, 60_000);
});
