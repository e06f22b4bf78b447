// A world for the session broadcaster's tests and benchmark: an isolated Kafka/Redis world,
// a private Postgres schema with its own apps, the broadcaster (with webhook workers) and
// the api built in-process, and one local HTTP server per app receiving its webhooks.
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createEvent, hashSessionToken } from '@twofold/contracts';
import { createRedis, waitForRedis, type Redis } from '@twofold/redis';
import {
  createSessionEventFeed,
  createWebhookDeadLetters,
  type SessionEventFeed,
  type WebhookDeadLetters,
} from '@twofold/state';
import {
  createAppsRepository,
  createPolicyRepository,
  createPool,
  quoteIdent,
  runMigrations,
  type AppsRepository,
  type Pool,
} from '@twofold/store';
import { createPolicySnapshot } from '@twofold/verification';
import { buildApi, type ApiDeps, type ApiInstance } from '../../services/api/src/app.js';
import { createAuthenticator } from '../../services/api/src/auth.js';
import type { WebhookSettings } from '../../services/session-broadcaster/src/config.js';
import { buildSessionBroadcaster } from '../../services/session-broadcaster/src/session-broadcaster.js';
import {
  createSessionLifetime,
  type SessionLifetime,
} from '../../services/session-broadcaster/src/session-lifetime.js';
import {
  createWebhookDispatcher,
  type WebhookDispatcher,
} from '../../services/session-broadcaster/src/webhook-dispatcher.js';
import { createServiceMetrics } from '@twofold/telemetry';
import { deleteRedisKeys, isolated, type Isolated } from '../support/stack.js';

export interface Delivery {
  headers: IncomingHttpHeaders;
  body: string;
  /** performance.now() when the body was complete. */
  receivedAt: number;
  event: { id: string; type: string; data: { session: string; reason?: string } };
}

/** One app's webhook endpoint: records deliveries; can go down (refuse connections) or hang. */
export interface AppReceiver {
  appId: string;
  url: string;
  deliveries: Delivery[];
  onDelivery?: (delivery: Delivery) => void;
  /** Closes the port: connections are refused until up(). */
  down(): Promise<void>;
  up(): Promise<void>;
  /** While true, requests are read but never answered. */
  hanging: boolean;
  close(): Promise<void>;
}

export async function startReceiver(appId: string): Promise<AppReceiver> {
  let server: Server | undefined;
  let port = 0;
  const listen = async () => {
    const s = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        if (receiver.hanging) return; // never answers; twofold's timeout ends it
        const delivery: Delivery = {
          headers: req.headers,
          body,
          receivedAt: performance.now(),
          event: JSON.parse(body) as Delivery['event'],
        };
        receiver.deliveries.push(delivery);
        receiver.onDelivery?.(delivery);
        res.writeHead(204).end();
      });
    });
    s.keepAliveTimeout = 30_000;
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.listen(port, '127.0.0.1', () => resolve());
    });
    port = (s.address() as AddressInfo).port;
    server = s;
  };
  const stop = async () => {
    const s = server;
    server = undefined;
    if (!s) return;
    await new Promise<void>((resolve) => {
      s.close(() => resolve());
      s.closeAllConnections();
    });
  };
  await listen();
  const receiver: AppReceiver = {
    appId,
    url: `http://127.0.0.1:${port}/twofold/webhooks`,
    deliveries: [],
    hanging: false,
    down: stop,
    up: listen,
    close: stop,
  };
  return receiver;
}

export interface SessionWorld {
  world: Isolated;
  /** The private Postgres schema holding this world's apps. */
  schema: string;
  pool: Pool;
  apps: AppsRepository;
  redis: Redis;
  api: ApiInstance;
  apiUrl: string;
  adminKey: string;
  keys: Record<string, string>;
  secrets: Record<string, string>;
  receivers: Record<string, AppReceiver>;
  webhooks: WebhookDispatcher;
  /** The broadcaster's session lifetime (the admin policy's, else options.ttlSeconds). */
  lifetime: SessionLifetime;
  feed: SessionEventFeed;
  deadLetters: WebhookDeadLetters;
  /** Publishes `twofold.2fa.verified` as the verifier would; returns the event. */
  verify(input: {
    username: string;
    appId: string;
    token: string;
    time?: Date;
  }): Promise<{ id: string; session: string }>;
  /** Publishes `twofold.logout` as an app would. */
  logout(input: { username: string; appId: string; token: string }): Promise<{ id: string; session: string }>;
  /** GET /v1/sessions/current as an app. */
  current(appId: string, token: string): Promise<{ status: number; body: Record<string, unknown> }>;
  /** Closes the api and builds a new one on the same port (SSE clients lose their stream). */
  restartApi(downMs?: number): Promise<void>;
  close(): Promise<void>;
}

const SCHEMA_SAFE = /[^a-z0-9_]/g;

export async function createSessionWorld(
  name: string,
  options: {
    appIds: readonly string[];
    webhooks: WebhookSettings;
    ttlSeconds?: number;
    /** false: no broadcaster in this process (the benchmark runs its own process). */
    broadcaster?: boolean;
    /** Register the apps without webhook URLs (the benchmark's SSE/state-only run). */
    webhooksOff?: boolean;
  },
): Promise<SessionWorld> {
  const world = await isolated(name);
  const adminKey = world.env['TWOFOLD_ADMIN_KEY']!;
  const schema = `t_${world.id.toLowerCase().replace(SCHEMA_SAFE, '_')}`;
  // node-pg-migrate's lock is database-wide: wait while another test or the stack migrates.
  for (let attempt = 0; ; attempt++) {
    try {
      await runMigrations({ databaseUrl: world.config.database.url, schema });
      break;
    } catch (err) {
      if (attempt > 60 || !/another migration is already running/i.test((err as Error).message)) throw err;
      await new Promise((r) => setTimeout(r, 500));
    }
  }
  const pool = createPool({ url: world.config.database.url, schema, max: 4 });
  const apps = createAppsRepository(pool);
  const redis = createRedis(world.config.redis.url, 'state');
  await waitForRedis(redis);
  const prefix = world.config.redis.keyPrefix;

  const receivers: Record<string, AppReceiver> = {};
  for (const appId of options.appIds) receivers[appId] = await startReceiver(appId);

  const webhooks = createWebhookDispatcher({
    redisUrl: world.config.redis.url,
    keyPrefix: prefix,
    targets: () => apps.webhookTargets(),
    settings: options.webhooks,
    logger: world.logger,
    metrics: world.metrics,
  });
  const policies = createPolicyRepository(pool);
  const lifetime = createSessionLifetime({
    policies,
    fallbackSeconds: options.ttlSeconds ?? 28_800,
    logger: world.logger,
    refreshMs: 200,
  });
  const policySnapshot = createPolicySnapshot({ repository: policies, logger: world.logger });
  const broadcaster = buildSessionBroadcaster({
    kafka: world.kafka,
    producer: world.producer,
    redis,
    logger: world.logger,
    metrics: world.metrics,
    groupId: `${world.config.kafka.groupPrefix}session-broadcaster`,
    keyPrefix: prefix,
    sessionTtlSeconds: lifetime.seconds,
    webhooks,
  });

  const feed = createSessionEventFeed({
    reader: createRedis(world.config.redis.url, 'queue'),
    redis,
    prefix,
    blockMs: 1_000,
  });
  await feed.start();
  const deadLetters = createWebhookDeadLetters({ redisUrl: world.config.redis.url, prefix });
  const auth = createAuthenticator({ apps, adminKey, cacheMs: 0 });
  // Only what the session routes use; the api's other routes are not called in these tests.
  const deps: Partial<ApiDeps> = {
    logger: world.logger,
    metrics: world.metrics,
    producer: world.producer,
    apps,
    auth,
    publicUrl: 'http://127.0.0.1',
    readiness: async () => ({}),
    sessions: { redis, keyPrefix: prefix, feed, deadLetters },
    policies,
    policySnapshot,
  };
  let builds = 0;
  let api = await buildApi(deps as ApiDeps);
  await api.listen({ port: 0, host: '127.0.0.1' });
  const apiPort = (api.server.address() as AddressInfo).port;
  const apiUrl = `http://127.0.0.1:${apiPort}`;

  const keys: Record<string, string> = {};
  const secrets: Record<string, string> = {};
  for (const appId of options.appIds) {
    const res = await fetch(`${apiUrl}/v1/admin/apps`, {
      method: 'POST',
      headers: { authorization: `Bearer ${adminKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ appId, ...(options.webhooksOff ? {} : { webhookUrl: receivers[appId]!.url }) }),
    });
    if (res.status !== 201) throw new Error(`registering ${appId}: HTTP ${res.status} ${await res.text()}`);
    keys[appId] = ((await res.json()) as { key: string }).key;
    const secret = await fetch(`${apiUrl}/v1/admin/apps/${appId}/webhook-secret`, {
      headers: { authorization: `Bearer ${adminKey}` },
    });
    secrets[appId] = ((await secret.json()) as { secret: string }).secret;
  }
  if (options.broadcaster !== false) {
    await lifetime.start();
    await broadcaster.start();
  }

  const sessionWorld: SessionWorld = {
    world,
    schema,
    pool,
    apps,
    redis,
    get api() {
      return api;
    },
    apiUrl,
    adminKey,
    keys,
    secrets,
    receivers,
    webhooks,
    lifetime,
    feed,
    deadLetters,
    async verify({ username, appId, token, time }) {
      const session = hashSessionToken(token);
      const event = createEvent(
        'twofold.2fa.verified',
        'service/verifier',
        username,
        { appId, session, method: 'totp' },
        time ? { time } : {},
      );
      await world.producer.publish('secondFactor', [event]);
      return { id: event.id, session };
    },
    async logout({ username, appId, token }) {
      const session = hashSessionToken(token);
      const event = createEvent('twofold.logout', `app/${appId}`, username, { appId, session });
      await world.producer.publish('login', [event]);
      return { id: event.id, session };
    },
    async current(appId, token) {
      const res = await fetch(`${apiUrl}/v1/sessions/current`, {
        headers: { authorization: `Bearer ${keys[appId]}`, 'x-twofold-session': token },
      });
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    },
    async restartApi(downMs = 0) {
      await api.close();
      if (downMs > 0) await new Promise((r) => setTimeout(r, downMs));
      // A fresh registry: the api registers its HTTP metrics once per registry.
      api = await buildApi({
        ...deps,
        metrics: createServiceMetrics(`${world.id}-api-${++builds}`),
      } as ApiDeps);
      await api.listen({ port: apiPort, host: '127.0.0.1' });
    },
    async close() {
      await api.close().catch(() => undefined);
      if (options.broadcaster !== false) await broadcaster.stop().catch(() => undefined);
      lifetime.stop();
      policySnapshot.stop();
      await feed.stop().catch(() => undefined);
      await deadLetters.close().catch(() => undefined);
      for (const receiver of Object.values(receivers)) await receiver.close();
      await deleteRedisKeys(redis, `${prefix}*`).catch(() => undefined);
      await redis.quit().catch(() => undefined);
      await pool.query(`DROP SCHEMA IF EXISTS ${quoteIdent(schema)} CASCADE`).catch(() => undefined);
      await pool.end().catch(() => undefined);
      await world.cleanup();
    },
  };
  return sessionWorld;
}

/** p-th percentile (0–100) of a list of numbers. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
}
