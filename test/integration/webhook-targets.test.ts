// Where session webhooks may go (WEBHOOK_DENIED_NETWORKS), through the real api and session
// broadcaster processes: a URL naming the cloud metadata service is refused at registration,
// also as an IPv6 address embedding it (NAT64, 6to4, IPv4-compatible); a host name is accepted
// there and checked by the broadcaster on the address it connects to, so a name resolving into
// a denied network, or an address embedding one in it, is never delivered to, and the dead
// letter says why; the default list lets the same webhook through; a redirect is never followed.
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyWebhookSignature } from '@twofold/client';
import { createEvent, hashSessionToken } from '@twofold/contracts';
import { apiClient, startServices, type RunningServices } from '../support/services.js';
import { eventually, isolated, type Isolated } from '../support/stack.js';

/** A local HTTP endpoint that records every connection and request it gets. */
interface Listener {
  port: number;
  connections: number;
  requests: { path: string; headers: IncomingHttpHeaders; body: string }[];
  close(): Promise<void>;
}

async function listen(answer: (req: IncomingMessage, res: ServerResponse) => void): Promise<Listener> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      listener.requests.push({
        path: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      });
      answer(req, res);
    });
  });
  server.on('connection', () => listener.connections++);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const listener: Listener = {
    port: (server.address() as AddressInfo).port,
    connections: 0,
    requests: [],
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
  return listener;
}

interface DeadLetter {
  appId: string;
  eventId: string;
  session: string;
  attempts: number;
  failedReason: string;
}

const MOVED = (listener: Listener) => `http://127.0.0.1:${listener.port}/moved`;
const sessionOf = (body: string) => (JSON.parse(body) as { data: { session: string } }).data.session;
const DEFAULT_NETWORKS = '169.254.0.0/16,fe80::/10,fd00:ec2::254/128,100.100.100.200/32,0.0.0.0/8,::/128';
/** Small numbers: a retried failure reaches the dead letters in about 2 s, a denied one at once. */
const WEBHOOK_ENV = {
  TWOFOLD_WEBHOOK_ATTEMPTS: '5',
  TWOFOLD_WEBHOOK_BACKOFF_MS: '100',
  TWOFOLD_WEBHOOK_TIMEOUT_MS: '2000',
  TWOFOLD_WEBHOOK_REFRESH_MS: '500',
};

let world: Isolated;
let api: RunningServices;
let admin: ReturnType<typeof apiClient>;
let hook: Listener;
/** Answers every webhook with a redirect to the hook listener. */
let redirecting: Listener;
const running: RunningServices[] = [];

beforeAll(async () => {
  world = await isolated('webhook-targets', { database: true });
  // The api with the default list: registration refuses the metadata ranges, nothing else.
  api = await startServices(world, ['api']);
  admin = apiClient(api.apiUrl, world.env['TWOFOLD_ADMIN_KEY']);
  hook = await listen((_req, res) => res.writeHead(204).end());
  redirecting = await listen((_req, res) => res.writeHead(307, { location: MOVED(hook) }).end());
});

afterAll(async () => {
  for (const services of running) await services.stop().catch(() => undefined);
  await api?.stop();
  await hook?.close();
  await redirecting?.close();
  await world?.cleanup();
});

const register = (appId: string, webhookUrl: string) =>
  admin<{ appId: string; webhookUrl: string | null; detail?: string }>('POST', '/v1/admin/apps', {
    appId,
    webhookUrl,
  });

const deadLetters = async (appId: string) =>
  (await admin<{ deadLetters: DeadLetter[] }>('GET', `/v1/admin/webhooks/dead-letters?appId=${appId}`)).body
    .deadLetters;

/** Publishes `twofold.2fa.verified` as the verifier would; returns the session hash. */
async function verifySession(username: string, appId: string): Promise<string> {
  const session = hashSessionToken(`crowd-${randomUUID()}`);
  await world.producer.publish('secondFactor', [
    createEvent('twofold.2fa.verified', 'service/verifier', username, { appId, session, method: 'totp' }),
  ]);
  return session;
}

async function startBroadcaster(env: Record<string, string>): Promise<RunningServices> {
  const services = await startServices(world, ['session-broadcaster'], { ...WEBHOOK_ENV, ...env });
  running.push(services);
  return services;
}

describe('registering a webhook URL', () => {
  it.each([
    [
      'http://169.254.169.254/latest/meta-data/iam/security-credentials/',
      '169.254.169.254',
      '169.254.0.0/16',
    ],
    ['http://[::ffff:169.254.169.254]/latest/meta-data/', '169.254.169.254', '169.254.0.0/16'],
    ['http://[fd00:ec2::254]/latest/meta-data/', 'fd00:ec2::254', 'fd00:ec2::254/128'],
    // IPv6 forms that embed the metadata address: NAT64, 6to4, IPv4-compatible.
    ['http://[64:ff9b::a9fe:a9fe]/', '64:ff9b::a9fe:a9fe', '169.254.0.0/16'],
    ['http://[64:ff9b::169.254.169.254]/latest/meta-data/', '64:ff9b::a9fe:a9fe', '169.254.0.0/16'],
    ['http://[2002:a9fe:a9fe::1]/', '2002:a9fe:a9fe::1', '169.254.0.0/16'],
    ['http://[::a9fe:a9fe]/', '::a9fe:a9fe', '169.254.0.0/16'],
  ])('refuses %s with a 400 problem naming the network, and stores nothing', async (url, host, network) => {
    const res = await register('metadata', url);
    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toContain('application/problem+json');
    expect(res.body.detail).toContain(`webhookUrl host ${host} is in ${network}`);
    expect(res.body.detail).toContain('WEBHOOK_DENIED_NETWORKS');
    const { body } = await admin<{ apps: { appId: string }[] }>('GET', '/v1/admin/apps');
    expect(body.apps.map((a) => a.appId)).not.toContain('metadata');
  });

  it('accepts private and loopback addresses and host names (checked at delivery)', async () => {
    expect((await register('loopback-check', `http://127.0.0.1:${hook.port}/hook`)).status).toBe(201);
    expect((await register('private-check', 'http://10.20.30.40:8080/hook')).status).toBe(201);
    // These two never receive a session event: registering them again without a URL drops it.
    await admin('POST', '/v1/admin/apps', { appId: 'loopback-check' });
    await admin('POST', '/v1/admin/apps', { appId: 'private-check' });
  });
});

describe('delivering', () => {
  const appId = 'byname';
  /** Apps whose URL is an IPv6 form embedding 127.0.0.1: NAT64, 6to4, IPv4-compatible. */
  const embedded = (listener: Listener) => ({
    'embedded-nat64': `http://[64:ff9b::7f00:1]:${listener.port}/hook`,
    'embedded-6to4': `http://[2002:7f00:1::1]:${listener.port}/hook`,
    'embedded-compatible': `http://[::7f00:1]:${listener.port}/hook`,
  });

  beforeAll(async () => {
    // Registered before any broadcaster starts, so each one delivers to both from its first read.
    const byName = await register(appId, `http://localhost:${hook.port}/hook`);
    expect(byName.status, JSON.stringify(byName.body)).toBe(201);
    const redirected = await register('redirected', `http://127.0.0.1:${redirecting.port}/hook`);
    expect(redirected.status, JSON.stringify(redirected.body)).toBe(201);
    // Accepted by the default list: 127.0.0.1 is not in it.
    for (const [id, url] of Object.entries(embedded(hook))) {
      const res = await register(id, url);
      expect(res.status, JSON.stringify(res.body)).toBe(201);
    }
  });

  it('is refused when the host resolves into a denied network, or is an address in one: nothing reaches the listeners, the dead letter says why, not retried', async () => {
    const strict = await startBroadcaster({ WEBHOOK_DENIED_NETWORKS: `${DEFAULT_NETWORKS},127.0.0.0/8` });
    try {
      const session = await verifySession('alice', appId);
      const letter = await eventually(
        async () => (await deadLetters(appId)).find((d) => d.session === session),
        20_000,
        'the dead letter of the refused delivery',
      );
      expect(letter.failedReason).toContain('localhost resolves to 127.0.0.1, which is in 127.0.0.0/8');
      expect(letter.failedReason).toContain('WEBHOOK_DENIED_NETWORKS');
      // Five attempts are allowed; a denied address uses one.
      expect(letter.attempts).toBe(1);
      // An address the api accepted but this broadcaster's list denies.
      const literal = await eventually(
        async () => (await deadLetters('redirected')).find((d) => d.session === session),
        20_000,
        'the dead letter of the delivery to 127.0.0.1',
      );
      expect(literal.failedReason).toContain('127.0.0.1 is in 127.0.0.0/8');
      expect(literal.attempts).toBe(1);
      // Addresses that embed 127.0.0.1 are denied as 127.0.0.1 is, without a connection attempt.
      for (const [id, url] of Object.entries(embedded(hook))) {
        const address = new URL(url).hostname.slice(1, -1);
        const letter = await eventually(
          async () => (await deadLetters(id)).find((d) => d.session === session),
          20_000,
          `the dead letter of the delivery to ${address}`,
        );
        expect(letter.failedReason).toContain(
          `${address} is in 127.0.0.0/8 (as 127.0.0.1, the IPv4 address it embeds)`,
        );
        expect(letter.attempts).toBe(1);
      }
      expect(hook.connections).toBe(0);
      expect(hook.requests).toEqual([]);
      expect(redirecting.connections).toBe(0);
    } finally {
      // Nothing listens at those addresses: the next tests deliver without them.
      for (const id of Object.keys(embedded(hook))) await admin('POST', '/v1/admin/apps', { appId: id });
      // The next test's broadcaster takes the consumer group over with the default list.
      await strict.stop();
    }
  });

  it('arrives with the default list, signed, at the same listener', async () => {
    await startBroadcaster({});
    const session = await verifySession('bob', appId);
    const delivery = await eventually(
      async () => hook.requests.find((r) => sessionOf(r.body) === session),
      20_000,
      'the delivery to the listener',
    );
    expect(delivery.path).toBe('/hook');
    const { body } = await admin<{ secret: string }>('GET', `/v1/admin/apps/${appId}/webhook-secret`);
    expect(
      verifyWebhookSignature({
        secret: body.secret,
        headers: delivery.headers as Record<string, string>,
        body: delivery.body,
      }).data.session,
    ).toBe(session);
    expect((await deadLetters(appId)).filter((d) => d.session === session)).toEqual([]);
  });

  it('never follows a redirect: each attempt fails with the status and where it pointed, and the target gets nothing', async () => {
    // The broadcaster of the previous test, with the default list.
    const session = await verifySession('carol', appId);
    const letter = await eventually(
      async () => (await deadLetters('redirected')).find((d) => d.session === session),
      20_000,
      'the dead letter of the redirected delivery',
    );
    expect(letter.failedReason).toBe(`HTTP 307 redirect to ${MOVED(hook)}, not followed`);
    expect(letter.attempts).toBe(5);
    expect(redirecting.requests.filter((r) => sessionOf(r.body) === session)).toHaveLength(5);
    expect(hook.requests.filter((r) => r.path === '/moved')).toEqual([]);
    // The other app heard about the same session.
    await eventually(
      async () => hook.requests.find((r) => r.path === '/hook' && sessionOf(r.body) === session),
      20_000,
      'the delivery to the other app',
    );
  });
});
