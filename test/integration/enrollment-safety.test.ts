// Enrollment routes and hosted page, from a review, against the real stores: (1) an activation
// that cannot be announced (Kafka) enrolls nothing, keeps the pending enrollment, and the
// retry with the same code works (before, the user was enrolled with backup codes never
// shown, unaudited, and the retry got 404/409); (3) Postgres or Redis down, and a pending
// enrollment whose key left the key ring, are 503 and 409 problems, not 500; (4) a leftover
// pending enrollment of an enrolled user spends no step of the user's replay guard, and the
// configured TOTP window is the enrollment's too; (5) an app cannot confirm another app's.
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import Fastify from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEventProducer, type EventProducer } from '@twofold/kafka';
import { createSecretKeyRing, encryptSecret, generateSecret, type SecretKeyRing } from '@twofold/otp';
import { createRedis, taggedKey, type Redis } from '@twofold/redis';
import { replayKey } from '@twofold/state';
import {
  createAppsRepository,
  createEnrollmentsRepository,
  createPool,
  hashApiKey,
  type AppsRepository,
  type EnrollmentsRepository,
  type Pool,
} from '@twofold/store';
import { createEnrollmentService } from '@twofold/verification';
import { keyRingFromEnv } from '../../bench/lib/seed.js';
import { createAuthenticator } from '../../services/api/src/auth.js';
import { hostedPagesRoute } from '../../services/api/src/pages/hosted-pages.plugin.js';
import { installProblemHandlers } from '../../services/api/src/problem.js';
import { enrollmentsRoute } from '../../services/api/src/routes/enrollments.route.js';
import { oathtoolTotp, previousStepCode, secretOf } from '../support/otp.js';
import { flat, formOf, pageVisitor } from '../support/pages.js';
import { eventually, type Isolated } from '../support/stack.js';
import { isolatedWithStores, type WorldWithStores } from '../support/stores.js';
import { readTopic } from '../support/topic-reader.js';

type Problem = { type: string; status: number; detail: string };
type Started = { enrollmentId: string; otpauthUri: string; enrollUrl: string };
type Enrolled = { username: string; backupCodes: string[] };

let stores: WorldWithStores;
let world: Isolated;
let redis: Redis;
let pool: Pool;
let apps: AppsRepository;
let enrollments: EnrollmentsRepository;
let keyRing: SecretKeyRing;
let unconnected: EventProducer;
const keys: Record<string, string> = {};
const closing: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  stores = await isolatedWithStores('enrollment-safety');
  ({ world, redis, pool } = stores);
  apps = createAppsRepository(pool);
  enrollments = createEnrollmentsRepository(pool);
  keyRing = keyRingFromEnv(world.env);
  // Kafka out of reach: a producer that never connected refuses to send.
  unconnected = createEventProducer(world.kafka, { topics: world.topics, logger: world.logger });
  for (const appId of ['jira', 'confluence']) {
    keys[appId] = `tfk_${randomBytes(32).toString('base64url')}`;
    await apps.upsert({ appId, name: appId, keyHash: hashApiKey(keys[appId]), origins: [] });
  }
});

afterAll(async () => {
  for (const close of closing) await close().catch(() => undefined);
  await stores.cleanup();
});

/** The enrollment routes and the hosted page on a local port, over these stores. */
async function serve(
  options: {
    producer?: EventProducer;
    redis?: Redis;
    enrollments?: EnrollmentsRepository;
    keyRing?: SecretKeyRing;
    window?: number;
  } = {},
) {
  const enrollment = createEnrollmentService({
    enrollments: options.enrollments ?? enrollments,
    keyRing: options.keyRing ?? keyRing,
    redis: options.redis ?? redis,
    keyPrefix: world.config.redis.keyPrefix,
    producer: options.producer ?? world.producer,
    ...(options.window !== undefined ? { window: options.window } : {}),
  });
  const app = Fastify().withTypeProvider<TypeBoxTypeProvider>();
  installProblemHandlers(app);
  const auth = createAuthenticator({ apps, adminKey: world.env['TWOFOLD_ADMIN_KEY']! });
  await app.register(enrollmentsRoute({ auth, enrollment, publicUrl: 'http://127.0.0.1' }));
  await app.register(
    hostedPagesRoute({
      challenges: { get: async () => undefined },
      verifier: { verify: () => Promise.reject(new Error('not in these tests')) },
      enrollment,
      apps,
      publicUrl: 'http://127.0.0.1',
    }),
  );
  await app.listen({ port: 0, host: '127.0.0.1' });
  closing.push(() => app.close());
  const url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  const call = async <T>(appId: string, path: string, body: object) => {
    const res = await fetch(`${url}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${keys[appId]}` },
      body: JSON.stringify(body),
    });
    return { status: res.status, type: res.headers.get('content-type'), body: (await res.json()) as T };
  };
  return {
    url,
    start: (appId: string, username: string) => call<Started>(appId, '/v1/enrollments', { username }),
    confirm: <T = Enrolled>(appId: string, enrollmentId: string, code: string) =>
      call<T>(appId, `/v1/enrollments/${enrollmentId}/confirm`, { code }),
    importKey: <T = Enrolled>(appId: string, body: object) => call<T>(appId, '/v1/enrollments/import', body),
  };
}

function expectProblem(
  res: { status: number; type: string | null; body: unknown },
  status: number,
  detail: RegExp,
) {
  expect(res.status, JSON.stringify(res.body)).toBe(status);
  expect(res.type).toMatch(/^application\/problem\+json/);
  expect((res.body as Problem).detail).toMatch(detail);
}

const attemptsOf = async (enrollmentId: string) =>
  redis.get(taggedKey(world.config.redis.keyPrefix, 'enroll-attempts', enrollmentId));

/** A Redis state client on a port nothing listens on: every command fails at once. */
function redisDown(): Redis {
  const down = createRedis('redis://127.0.0.1:1', 'state', { retryStrategy: () => null });
  down.on('error', () => undefined);
  closing.push(async () => down.disconnect());
  return down;
}

/** Enrollments on a Postgres that refuses connections. */
function postgresDown(): EnrollmentsRepository {
  const down = createPool({ url: 'postgres://twofold:x@127.0.0.1:1/twofold', schema: 'public', max: 1 });
  closing.push(() => down.end());
  return createEnrollmentsRepository(down);
}

describe('an activation that cannot be announced (Kafka down)', () => {
  it('confirm: 503 "nothing was enrolled", the pending enrollment stays, the same code works on retry', async () => {
    const kafkaDown = await serve({ producer: unconnected });
    const up = await serve();
    const started = await up.start('jira', 'anna');
    expect(started.status, JSON.stringify(started.body)).toBe(201);
    const code = await previousStepCode(secretOf(started.body.otpauthUri));

    const refused = await kafkaDown.confirm('jira', started.body.enrollmentId, code);
    expectProblem(refused, 503, /nothing was enrolled: try again with the code your app shows now/);
    expect(await enrollments.get('anna')).toBeUndefined();
    expect(await enrollments.getPending(started.body.enrollmentId)).toBeDefined();

    const topic = await readTopic(world.kafka, world.topics.secondFactor);
    const done = await up.confirm('jira', started.body.enrollmentId, code);
    expect(done.status, JSON.stringify(done.body)).toBe(200);
    expect(done.body.backupCodes).toHaveLength(10);
    expect(await enrollments.get('anna')).toBeDefined();
    const activated = await eventually(
      async () =>
        topic
          .json<{ type: string; subject: string }>()
          .find((e) => e.type === 'twofold.enrollment.activated' && e.subject === 'anna'),
      30_000,
      'the activation announced',
    );
    expect(activated).toBeDefined();
    await topic.stop();
  });

  it('import: 503 "nothing was enrolled", and the retry imports the key', async () => {
    const kafkaDown = await serve({ producer: unconnected });
    const up = await serve();
    const secret = generateSecret();
    const body = { username: 'bert', secret, code: await previousStepCode(secret) };
    expectProblem(await kafkaDown.importKey('jira', body), 503, /nothing was enrolled/);
    expect(await enrollments.get('bert')).toBeUndefined();
    const done = await up.importKey('jira', body);
    expect(done.status, JSON.stringify(done.body)).toBe(201);
    expect(done.body.backupCodes).toHaveLength(10);
  });

  it('hosted page: 503 with the form again, nothing enrolled; the retry shows the backup codes', async () => {
    const up = await serve();
    const started = await up.start('jira', 'cleo');
    const code = await previousStepCode(secretOf(started.body.otpauthUri));
    for (const [server, status] of [
      [await serve({ producer: unconnected }), 503],
      [up, 200],
    ] as const) {
      const visitor = pageVisitor(server.url);
      const page = await visitor.get(`/enroll/${started.body.enrollmentId}`);
      expect(page.status).toBe(200);
      const form = formOf(page.html);
      const answer = await visitor.post(form.action, { ...form.fields, code });
      expect(answer.status, answer.html.slice(0, 300)).toBe(status);
      if (status === 503) {
        expect(flat(answer.html)).toMatch(/Nothing was set up/);
        expect(formOf(answer.html).action).toBe(form.action);
        expect(await enrollments.get('cleo')).toBeUndefined();
      } else {
        expect(answer.html).toMatch(/id="backup-codes"/);
        expect(await enrollments.get('cleo')).toBeDefined();
      }
    }
  });
});

describe('stores down and unreadable pending enrollments', () => {
  it('Postgres down: starting and confirming are 503 problems; the page is a 503 page', async () => {
    const down = await serve({ enrollments: postgresDown() });
    expectProblem(await down.start('jira', 'dora'), 503, /unavailable \(Postgres\).*try again/);
    const started = await (await serve()).start('jira', 'dora');
    expectProblem(
      await down.confirm('jira', started.body.enrollmentId, '123456'),
      503,
      /cannot be read \(Postgres\); try again/,
    );
    const page = await pageVisitor(down.url).get(`/enroll/${started.body.enrollmentId}`);
    expect(page.status).toBe(503);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
  });

  it('Redis down: confirming is a 503 problem and enrolls nothing', async () => {
    const started = await (await serve()).start('jira', 'emil');
    const code = await previousStepCode(secretOf(started.body.otpauthUri));
    const down = await serve({ redis: redisDown() });
    expectProblem(await down.confirm('jira', started.body.enrollmentId, code), 503, /\(Redis\).*try again/);
    expect(await enrollments.get('emil')).toBeUndefined();
  });

  it('a pending enrollment whose key left the key ring: 409 "start enrollment again", on the api and the page', async () => {
    const retired = createSecretKeyRing(new Map([['retired', randomBytes(32)]]), 'retired');
    const started = await (await serve({ keyRing: retired })).start('jira', 'finn');
    const code = oathtoolTotp(secretOf(started.body.otpauthUri));
    const server = await serve();
    expectProblem(
      await server.confirm('jira', started.body.enrollmentId, code),
      409,
      /start enrollment again/,
    );
    const page = await pageVisitor(server.url).get(`/enroll/${started.body.enrollmentId}`);
    expect(page.status).toBe(409);
    expect(flat(page.html)).toMatch(/Start setting up your authenticator again/);
    expect(await enrollments.get('finn')).toBeUndefined();
  });
});

describe('replay guard of enrollment codes', () => {
  it('a leftover pending enrollment of an enrolled user is refused before any step is spent', async () => {
    const server = await serve();
    const leftover = await server.start('jira', 'gina');
    // Gina enrolls another way (import) while the first setup is still pending.
    await enrollments.activate({
      username: 'gina',
      secretCiphertext: encryptSecret(keyRing, 'gina', generateSecret()),
      algorithm: 'SHA1',
      digits: 6,
      period: 30,
      origin: 'imported',
      backupCodeHashes: [],
    });
    const refused = await server.confirm(
      'jira',
      leftover.body.enrollmentId,
      oathtoolTotp(secretOf(leftover.body.otpauthUri)),
    );
    expectProblem(refused, 409, /already has an( active)? authenticator/);
    // Her real authenticator's current code is not made a replay by the other secret's code.
    expect(await redis.get(replayKey(world.config.redis.keyPrefix, 'gina'))).toBeNull();
  });

  it('takes codes in the configured window, and keeps the step as long as the code verifier takes it', async () => {
    const server = await serve({ window: 3 });
    const started = await server.start('jira', 'hugo');
    const secret = secretOf(started.body.otpauthUri);
    // Two steps old: refused with a window of 1, taken with 3 (even if the step turns meanwhile).
    const code = oathtoolTotp(secret, { atSeconds: Math.floor(Date.now() / 1000) - 60 });
    const done = await server.confirm('jira', started.body.enrollmentId, code);
    expect(done.status, JSON.stringify(done.body)).toBe(200);
    // period · (2 · window + 2): 240 s with a window of 3, 120 s had it assumed 1.
    const ttl = await redis.ttl(replayKey(world.config.redis.keyPrefix, 'hugo'));
    expect(ttl).toBeGreaterThan(120);
    expect(ttl).toBeLessThanOrEqual(240);
  });
});

describe("confirming another app's enrollment", () => {
  it('is 404 as if there were none and counts no attempt; the app that started it confirms', async () => {
    const server = await serve();
    const started = await server.start('jira', 'ivan');
    const code = await previousStepCode(secretOf(started.body.otpauthUri));
    const foreign = await server.confirm('confluence', started.body.enrollmentId, code);
    expectProblem(foreign, 404, /unknown or expired enrollment; start a new one/);
    expect(await enrollments.get('ivan')).toBeUndefined();
    expect(await attemptsOf(started.body.enrollmentId)).toBeNull();
    const done = await server.confirm('jira', started.body.enrollmentId, code);
    expect(done.status, JSON.stringify(done.body)).toBe(200);
  });
});
