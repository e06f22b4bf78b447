// Issue 7: every JSON route of the api against real services (api and verifier processes,
// Kafka, Redis, Postgres): success, each authentication failure, and bad input → the right
// 4xx with a `detail` a person can act on — and the refused request changed nothing.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashSessionToken } from '@twofold/contracts';
import { createPool, type Pool } from '@twofold/store';
import { oathtoolTotp, secretOf, previousStepCode } from '../support/otp.js';
import { apiClient, startServices, type RunningServices } from '../support/services.js';
import { isolated, type Isolated } from '../support/stack.js';
import { readTopic } from '../support/topic-reader.js';

type Problem = { type: string; title: string; status: number; detail: string };
type Reader = Awaited<ReturnType<typeof readTopic>>;

let world: Isolated;
let services: RunningServices;
let pool: Pool;
let loginTopic: Reader;
let adminTopic: Reader;
const keys: Record<string, string> = {};
const admin = () => apiClient(services.apiUrl, world.env['TWOFOLD_ADMIN_KEY']);
const as = (appId: string) => apiClient(services.apiUrl, keys[appId]);
const anonymous = () => apiClient(services.apiUrl);
const forged = () => apiClient(services.apiUrl, `tfk_${'x'.repeat(43)}`);
const now = () => Math.floor(Date.now() / 1000);
const newSession = () => hashSessionToken(randomUUID());
const loginBody = (username: string, extra: Record<string, unknown> = {}) => ({
  type: 'twofold.login.succeeded',
  subject: username,
  data: { appId: 'jira', session: newSession(), method: 'password', ip: '203.0.113.9', ...extra },
});

/** A raw request, for bodies apiClient would JSON-encode (bad JSON, form data, huge bodies). */
async function raw(method: string, path: string, key: string | undefined, body: string, contentType: string) {
  const res = await fetch(`${services.apiUrl}${path}`, {
    method,
    headers: { 'content-type': contentType, ...(key ? { authorization: `Bearer ${key}` } : {}) },
    body,
  });
  return { status: res.status, headers: res.headers, body: (await res.json()) as Problem };
}

function expectProblem(
  res: { status: number; body: unknown; headers: Headers },
  status: number,
  detail: RegExp,
): void {
  expect(res.status, JSON.stringify(res.body)).toBe(status);
  expect(res.headers.get('content-type')).toContain('application/problem+json');
  const problem = res.body as Problem;
  expect(problem.status).toBe(status);
  expect(problem.type).toMatch(/^https:\/\/twofold\.dev\/problems\//);
  expect(problem.detail).toMatch(detail);
}

async function enroll(username: string): Promise<string> {
  const started = await as('jira')<{ enrollmentId: string; otpauthUri: string }>('POST', '/v1/enrollments', {
    username,
  });
  expect(started.status, JSON.stringify(started.body)).toBe(201);
  const secret = secretOf(started.body.otpauthUri);
  const confirmed = await as('jira')('POST', `/v1/enrollments/${started.body.enrollmentId}/confirm`, {
    code: await previousStepCode(secret),
  });
  expect(confirmed.status, JSON.stringify(confirmed.body)).toBe(200);
  return secret;
}

async function challengeFor(username: string): Promise<string> {
  const res = await as('jira')<{ decision: string; challengeId?: string }>(
    'POST',
    '/v1/login-events?wait=decision&timeoutMs=15000',
    loginBody(username),
  );
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  expect(res.body.decision).toBe('challenge');
  return res.body.challengeId!;
}

const enrolledUsers = async (...names: string[]) =>
  (
    await pool.query<{ username: string }>('SELECT username FROM enrollments WHERE username = ANY($1)', [
      names,
    ])
  ).rows.length;

beforeAll(async () => {
  world = await isolated('api-routes', { database: true });
  services = await startServices(world, ['api', 'verifier']);
  pool = createPool({ url: world.config.database.url, schema: world.config.database.schema, max: 2 });
  for (const appId of ['jira', 'confluence']) {
    const res = await admin()<{ key: string }>('POST', '/v1/admin/apps', {
      appId,
      origins: [`https://${appId}.example.com`],
    });
    expect(res.status).toBe(201);
    keys[appId] = res.body.key;
  }
  loginTopic = await readTopic(world.kafka, world.topics.login);
  adminTopic = await readTopic(world.kafka, world.topics.admin);
});

afterAll(async () => {
  await loginTopic?.stop();
  await adminTopic?.stop();
  await pool?.end();
  const codes = await services?.stop();
  await world?.cleanup();
  for (const [name, code] of codes ?? []) expect(code, `${name} exit code after SIGTERM`).toBe(0);
});

// Every route, with a body that would succeed, so only the key decides the answer.
const APP_ROUTES: [string, string, unknown][] = [
  ['POST', '/v1/login-events', loginBody('auth-probe')],
  ['POST', '/v1/challenges/AAAAAAAAAAAAAAAAAAAAAA/verify', { code: '123456' }],
  ['POST', '/v1/enrollments', { username: 'auth-probe' }],
  ['POST', `/v1/enrollments/${randomUUID()}/confirm`, { code: '123456' }],
  [
    'POST',
    '/v1/enrollments/import',
    { username: 'auth-probe', secret: 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP', code: '123456' },
  ],
];
const ADMIN_ROUTES: [string, string, unknown][] = [
  ['GET', '/v1/admin/apps', undefined],
  ['POST', '/v1/admin/apps', { appId: 'intruder' }],
  ['GET', '/v1/admin/policy', undefined],
  ['PUT', '/v1/admin/policy', { defaultMode: 'optional' }],
  ['PUT', '/v1/admin/policy/users/auth-probe', { mode: 'exempt' }],
  ['DELETE', '/v1/admin/policy/users/auth-probe', undefined],
  ['DELETE', '/v1/admin/users/auth-probe/enrollment', undefined],
];

describe('authentication: every route refuses the wrong caller, and nothing changes', () => {
  it.each(APP_ROUTES)('%s %s: no key 401, unknown key 401, the admin key 403', async (method, path, body) => {
    expectProblem(await anonymous()(method, path, body), 401, /Authorization: Bearer <app key>/);
    expectProblem(await forged()(method, path, body), 401, /app key is not valid.*POST \/v1\/admin\/apps/);
    expectProblem(await admin()(method, path, body), 403, /takes an app key/);
  });

  it.each(ADMIN_ROUTES)(
    '%s %s: no key 401, an app key 403, an unknown key 401',
    async (method, path, body) => {
      expectProblem(await anonymous()(method, path, body), 401, /admin key/);
      expectProblem(await as('jira')(method, path, body), 403, /admin key; app keys cannot call them/);
      expectProblem(await forged()(method, path, body), 401, /admin key is not valid/);
    },
  );

  it('left no trace: no app, rule, setting, enrollment or event came from a refused call', async () => {
    const apps = await admin()<{ apps: { appId: string }[] }>('GET', '/v1/admin/apps');
    expect(apps.body.apps.map((a) => a.appId)).toEqual(['confluence', 'jira']);
    const policy = await admin()<{ settings: { defaultMode: string }; rules: unknown[] }>(
      'GET',
      '/v1/admin/policy',
    );
    expect(policy.body.settings.defaultMode).toBe('require');
    expect(policy.body.rules).toEqual([]);
    expect(await enrolledUsers('auth-probe')).toBe(0);
    await new Promise((r) => setTimeout(r, 1_000));
    expect(loginTopic.json<{ subject: string }>().filter((e) => e.subject === 'auth-probe')).toEqual([]);
    // Only the setup's two registrations are audited (the reader reads from the beginning).
    expect(
      adminTopic.json<{ type: string; data: { appId?: string } }>().map((e) => [e.type, e.data.appId]),
    ).toEqual([
      ['twofold.admin.app_registered', 'jira'],
      ['twofold.admin.app_registered', 'confluence'],
    ]);
  });
});

describe('POST /v1/login-events', () => {
  it('accepts an event of the app (202 {id}), keyed by the normalized username, source app/<appId>', async () => {
    const res = await as('jira')<{ id: string }>('POST', '/v1/login-events', loginBody('  Accepted-User '));
    expect(res.status).toBe(202);
    const event = await expectOnTopic(res.body.id);
    expect(event).toMatchObject({
      source: 'app/jira',
      subject: 'accepted-user',
      type: 'twofold.login.succeeded',
    });
    const short = await as('jira')<{ id: string }>('POST', '/v1/login-events', {
      type: 'twofold.login.failed',
      username: 'accepted-user',
      data: { appId: 'jira', ip: '2001:db8::1', reason: 'bad_password' },
    });
    expect(short.status).toBe(202);
  });

  it('?wait=decision answers with the verifier decision (200)', async () => {
    const res = await as('jira')<{ decision: string; reason: string }>(
      'POST',
      '/v1/login-events?wait=decision&timeoutMs=15000',
      loginBody('never-enrolled'),
    );
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ decision: 'enroll', reason: 'not_enrolled' });
  });

  it('refuses an app impersonating another (source or data.appId): 403, nothing published', async () => {
    expectProblem(
      await as('jira')('POST', '/v1/login-events', { ...loginBody('impostor'), source: 'app/confluence' }),
      403,
      /app jira may only publish events with source "app\/jira"/,
    );
    expectProblem(
      await as('jira')('POST', '/v1/login-events', loginBody('impostor', { appId: 'confluence' })),
      403,
      /data\.appId must be "jira"/,
    );
  });

  it.each(
    (
      [
        ['bad JSON', '{"type": "twofold.login.succeeded",', 400, /JSON/],
        ['an empty body', '', 400, /empty|body/],
        [
          'no subject',
          JSON.stringify({ type: 'twofold.login.succeeded', data: loginBody('x').data }),
          400,
          /subject.*required/,
        ],
        [
          'no data',
          JSON.stringify({ type: 'twofold.login.succeeded', subject: 'impostor' }),
          400,
          /body\.data is required/,
        ],
        [
          'a non-string subject',
          JSON.stringify({ ...loginBody('x'), subject: 42 }),
          400,
          /body\.subject must be string/,
        ],
        [
          'data as a string',
          JSON.stringify({ ...loginBody('x'), data: 'jira' }),
          400,
          /body\.data must be object/,
        ],
        ['a bad ip', JSON.stringify(loginBody('impostor', { ip: 'not-an-ip' })), 422, /ip/],
        ['no session', JSON.stringify(loginBody('impostor', { session: undefined })), 422, /session/],
        ['an unknown method', JSON.stringify(loginBody('impostor', { method: 'magic' })), 422, /method/],
        [
          'a time an hour ahead',
          JSON.stringify({ ...loginBody('impostor'), time: new Date(Date.now() + 3_600_000).toISOString() }),
          422,
          /time .* is \d+ s ahead of twofold's clock; at most 300 s/,
        ],
        [
          'a type of another topic',
          JSON.stringify({ ...loginBody('impostor'), type: 'twofold.2fa.verified' }),
          422,
          /type|topic/,
        ],
      ] as const
    ).map(([what, body, status, detail]) => ({ what, body, status, detail })),
  )('refuses $what with $status', async ({ body, status, detail }) => {
    expectProblem(
      await raw('POST', '/v1/login-events', keys['jira'], body, 'application/json'),
      status,
      detail,
    );
  });

  it('refuses a body over 64 KiB (413), a form body (415) and a timeout out of range (400)', async () => {
    const huge = JSON.stringify(loginBody('impostor', { userAgent: 'x'.repeat(70_000) }));
    expectProblem(
      await raw('POST', '/v1/login-events', keys['jira'], huge, 'application/json'),
      413,
      /64 KiB/,
    );
    expectProblem(
      await raw(
        'POST',
        '/v1/login-events',
        keys['jira'],
        'type=twofold.login.succeeded',
        'application/x-www-form-urlencoded',
      ),
      415,
      /application\/json/,
    );
    expectProblem(
      await as('jira')('POST', '/v1/login-events?wait=decision&timeoutMs=0', loginBody('impostor')),
      400,
      /querystring\.timeoutMs must be >= 1/,
    );
    await new Promise((r) => setTimeout(r, 1_000));
    expect(loginTopic.json<{ subject: string }>().filter((e) => e.subject === 'impostor')).toEqual([]);
  });
});

async function expectOnTopic(id: string) {
  for (let i = 0; i < 100; i++) {
    const event = loginTopic.json<{ id: string }>().find((e) => e.id === id);
    if (event) return event;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`event ${id} never reached the login topic`);
}

describe('POST /v1/challenges/{challengeId}/verify', () => {
  let secret: string;
  beforeAll(async () => {
    secret = await enroll('victor');
  });

  it('verifies the right code (200 verified) and answers a wrong one with verified:false and attempts left', async () => {
    const challengeId = await challengeFor('victor');
    const wrong = await as('jira')('POST', `/v1/challenges/${challengeId}/verify`, {
      code: oathtoolTotp(secret, { atSeconds: now() - 3600 }),
    });
    expect(wrong.body).toEqual({ verified: false, reason: 'bad_code', attemptsLeft: 4 });
    const right = await as('jira')('POST', `/v1/challenges/${challengeId}/verify`, {
      code: oathtoolTotp(secret),
    });
    expect(right.body).toEqual({ verified: true, method: 'totp' });
  });

  it('refuses another app (403) without spending an attempt of the owner', async () => {
    const challengeId = await challengeFor('victor');
    for (let i = 0; i < 6; i++) {
      expectProblem(
        await as('confluence')('POST', `/v1/challenges/${challengeId}/verify`, { code: '000000' }),
        403,
        /belongs to app jira, not confluence/,
      );
    }
    const right = await as('jira')('POST', `/v1/challenges/${challengeId}/verify`, {
      code: oathtoolTotp(secret, { atSeconds: now() + 30 }),
    });
    expect(right.body).toEqual({ verified: true, method: 'totp' });
  });

  it.each(
    (
      [
        ['bad JSON', '{"code": ', 400, /JSON/],
        ['no code', '{}', 400, /body\.code is required/],
        ['a numeric code', '{"code": 123456}', 400, /body\.code must be string/],
        ['an extra field', '{"code": "123456", "username": "victor"}', 400, /additional properties/],
        ['five digits', '{"code": "12345"}', 400, /6 or 8 digits/],
        ['a body over 1 KiB', JSON.stringify({ code: '1'.repeat(2000) }), 413, /1 KiB/],
      ] as const
    ).map(([what, body, status, detail]) => ({ what, body, status, detail })),
  )('refuses $what with $status and spends no attempt', async ({ body, status, detail }) => {
    const challengeId = await challengeFor('victor');
    expectProblem(
      await raw('POST', `/v1/challenges/${challengeId}/verify`, keys['jira'], body, 'application/json'),
      status,
      detail,
    );
    // All five attempts are left: four wrong codes still leave one.
    for (let i = 0; i < 4; i++) {
      const wrong = await as('jira')<{ attemptsLeft: number }>(
        'POST',
        `/v1/challenges/${challengeId}/verify`,
        {
          code: oathtoolTotp(secret, { atSeconds: now() - 3600 }),
        },
      );
      expect(wrong.body.attemptsLeft).toBe(4 - i);
    }
  });

  it('unknown or malformed challenge ids are 404 with what to do', async () => {
    expectProblem(
      await as('jira')('POST', '/v1/challenges/AAAAAAAAAAAAAAAAAAAAAA/verify', { code: '123456' }),
      404,
      /unknown or expired challenge; sign in again/,
    );
    expectProblem(
      await as('jira')('POST', '/v1/challenges/not-a-challenge/verify', { code: '123456' }),
      404,
      /unknown or expired challenge/,
    );
    expectProblem(
      await as('jira')('POST', `/v1/challenges/${'A'.repeat(65)}/verify`, { code: '123456' }),
      400,
      /params\.challengeId/,
    );
  });
});

describe('enrollment routes', () => {
  it('POST /v1/enrollments starts (201 with the QR and the hosted page) and refuses bad input', async () => {
    const res = await as('jira')<{
      enrollmentId: string;
      otpauthUri: string;
      qrSvg: string;
      enrollUrl: string;
    }>('POST', '/v1/enrollments', { username: 'Wendy', digits: 8, algorithm: 'SHA256' });
    expect(res.status).toBe(201);
    expect(res.body.otpauthUri).toMatch(
      /^otpauth:\/\/totp\/twofold:wendy\?secret=[A-Z2-7]+&issuer=twofold&algorithm=SHA256&digits=8/,
    );
    expect(res.body.qrSvg).toMatch(/^<svg/);
    expect(res.body.enrollUrl).toMatch(new RegExp(`/enroll/${res.body.enrollmentId}$`));
    for (const [body, detail] of [
      [{}, /body\.username is required/],
      [{ username: 42 }, /body\.username must be string/],
      [{ username: '' }, /body\.username must NOT have fewer than 1 characters/],
      [{ username: 'x', digits: 7 }, /body\.digits/],
      [{ username: 'x', algorithm: 'MD5' }, /body\.algorithm/],
      [{ username: 'x', secret: 'JBSWY3DPEHPK3PXP' }, /additional properties/],
    ] as const) {
      expectProblem(await as('jira')('POST', '/v1/enrollments', body), 400, detail);
    }
    expectProblem(
      await raw('POST', '/v1/enrollments', keys['jira'], '{"username":', 'application/json'),
      400,
      /JSON/,
    );
    expect(await enrolledUsers('x', 'wendy')).toBe(0);
  });

  it('confirm: a wrong code is 422, unknown ids 404, bad ids 400; the right code returns backup codes once', async () => {
    const started = await as('jira')<{ enrollmentId: string; otpauthUri: string }>(
      'POST',
      '/v1/enrollments',
      {
        username: 'xavier',
      },
    );
    const secret = secretOf(started.body.otpauthUri);
    const confirm = (id: string, body: unknown) => as('jira')('POST', `/v1/enrollments/${id}/confirm`, body);
    expectProblem(
      await confirm(started.body.enrollmentId, { code: oathtoolTotp(secret, { atSeconds: now() - 3600 }) }),
      422,
      /does not match the key; check that the device clock/,
    );
    expectProblem(await confirm(started.body.enrollmentId, { code: 'abc' }), 400, /6-digit code/);
    expectProblem(await confirm(started.body.enrollmentId, {}), 400, /body\.code is required/);
    expectProblem(
      await confirm(randomUUID(), { code: '123456' }),
      404,
      /unknown or expired enrollment; start a new one/,
    );
    expectProblem(
      await confirm('not-a-uuid', { code: '123456' }),
      400,
      /params\.enrollmentId must match format "uuid"/,
    );
    expect(await enrolledUsers('xavier')).toBe(0);
    const done = await confirm(started.body.enrollmentId, {
      code: await previousStepCode(secret),
    });
    expect(done.status).toBe(200);
    expect(done.body).toMatchObject({
      username: 'xavier',
      backupCodes: expect.arrayContaining([expect.stringMatching(/^[0-9a-z]{5}-[0-9a-z]{5}$/)]),
    });
    expectProblem(
      await confirm(started.body.enrollmentId, { code: oathtoolTotp(secret) }),
      404,
      /unknown or expired enrollment/,
    );
    expectProblem(
      await as('jira')('POST', '/v1/enrollments', { username: 'Xavier' }),
      409,
      /already has an authenticator; an admin must reset it first/,
    );
  });

  it('import: a key proven by a code is 201; a wrong code 422; junk and missing fields 400', async () => {
    const secret = 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP';
    const base = { username: 'yvonne', secret };
    expectProblem(
      await as('jira')('POST', '/v1/enrollments/import', {
        ...base,
        code: oathtoolTotp(secret, { atSeconds: now() - 3600 }),
      }),
      422,
      /does not match the key/,
    );
    expectProblem(
      await as('jira')('POST', '/v1/enrollments/import', { username: 'yvonne', code: '123456' }),
      400,
      /body\.secret is required/,
    );
    expectProblem(
      await as('jira')('POST', '/v1/enrollments/import', { ...base, code: '123456', period: 5 }),
      400,
      /body\.period must be >= 15/,
    );
    expectProblem(
      await as('jira')('POST', '/v1/enrollments/import', { ...base, secret: 'short', code: '123456' }),
      400,
      /^secret: /,
    );
    expect(await enrolledUsers('yvonne')).toBe(0);
    const done = await as('jira')<{ backupCodes: string[] }>('POST', '/v1/enrollments/import', {
      ...base,
      code: await previousStepCode(secret),
    });
    expect(done.status, JSON.stringify(done.body)).toBe(201);
    expect(done.body.backupCodes).toHaveLength(10);
  });
});

describe('admin routes', () => {
  it('apps: registers with its key shown once, lists without keys, refuses bad ids, origins and URLs', async () => {
    const created = await admin()<{ appId: string; key: string; origins: string[] }>(
      'POST',
      '/v1/admin/apps',
      {
        appId: 'bitbucket',
        name: 'Bitbucket',
        origins: ['https://bitbucket.example.com'],
        webhookUrl: 'https://bitbucket.example.com/hooks/twofold',
      },
    );
    expect(created.status).toBe(201);
    expect(created.body.key).toMatch(/^tfk_/);
    const list = await admin()<{ apps: Record<string, unknown>[] }>('GET', '/v1/admin/apps');
    const listed = list.body.apps.find((a) => a['appId'] === 'bitbucket');
    expect(listed).toMatchObject({ name: 'Bitbucket', origins: ['https://bitbucket.example.com'] });
    expect(JSON.stringify(list.body)).not.toContain(created.body.key);
    for (const [body, detail] of [
      [{ appId: 'Bad App!' }, /body\.appId must match pattern/],
      [{}, /body\.appId is required/],
      [{ appId: 'ok', origins: ['https://x.example.com/path'] }, /body\.origins\.0 must match pattern/],
      [{ appId: 'ok', origins: 'https://x.example.com' }, /body\.origins must be array/],
      [{ appId: 'ok', webhookUrl: 'ftp://x.example.com' }, /body\.webhookUrl/],
      [{ appId: 'ok', key: 'tfk_mine' }, /additional properties/],
    ] as const) {
      expectProblem(await admin()('POST', '/v1/admin/apps', body), 400, detail);
    }
    const after = await admin()<{ apps: { appId: string }[] }>('GET', '/v1/admin/apps');
    expect(after.body.apps.map((a) => a.appId)).toEqual(['bitbucket', 'confluence', 'jira']);
  });

  it('policy: reads, changes settings and rules; refuses bad input with nothing changed', async () => {
    const before = await admin()<{ settings: Record<string, unknown>; version: string }>(
      'GET',
      '/v1/admin/policy',
    );
    expect(before.status).toBe(200);
    for (const [method, path, body, status, detail] of [
      ['PUT', '/v1/admin/policy', { defaultMode: 'sometimes' }, 400, /body\.defaultMode/],
      ['PUT', '/v1/admin/policy', { sessionTtlSeconds: 5 }, 400, /body\.sessionTtlSeconds must be >= 60/],
      [
        'PUT',
        '/v1/admin/policy',
        { sessionTtlSeconds: '3600' },
        400,
        /body\.sessionTtlSeconds must be integer/,
      ],
      [
        'PUT',
        '/v1/admin/policy',
        { skipOnSso: { enabled: 'yes', requireMfaAmr: false } },
        400,
        /body\.skipOnSso\.enabled must be boolean/,
      ],
      ['PUT', '/v1/admin/policy', { colour: 'blue' }, 400, /additional properties/],
      ['PUT', '/v1/admin/policy/teams/red', { mode: 'require' }, 400, /params\.kind/],
      ['PUT', '/v1/admin/policy/users/kim', { mode: 'maybe' }, 400, /body\.mode/],
      ['PUT', '/v1/admin/policy/users/kim', {}, 400, /body\.mode is required/],
      ['PUT', '/v1/admin/policy/apps/Not%20An%20App', { mode: 'require' }, 400, /is not an app id/],
      ['DELETE', '/v1/admin/policy/users/nobody', undefined, 404, /no rule for user nobody/],
    ] as const) {
      expectProblem(await admin()(method, path, body), status, detail);
    }
    const unchanged = await admin()<{ settings: Record<string, unknown>; rules: unknown[] }>(
      'GET',
      '/v1/admin/policy',
    );
    expect(unchanged.body.settings).toEqual(before.body.settings);
    expect(unchanged.body.rules).toEqual([]);

    const put = await admin()<{ settings: { sessionTtlSeconds: number; defaultMode: string } }>(
      'PUT',
      '/v1/admin/policy',
      {
        sessionTtlSeconds: 3600,
      },
    );
    expect(put.body.settings).toMatchObject({ sessionTtlSeconds: 3600, defaultMode: 'require' });
    expect((await admin()('PUT', '/v1/admin/policy/users/Kim', { mode: 'exempt' })).body).toEqual({
      kind: 'user',
      subject: 'kim',
      mode: 'exempt',
    });
    expect((await admin()('PUT', '/v1/admin/policy/groups/Contractors', { mode: 'require' })).status).toBe(
      200,
    );
    expect((await admin()('PUT', '/v1/admin/policy/apps/jira', { mode: 'require' })).status).toBe(200);
    expect((await admin()('DELETE', '/v1/admin/policy/users/KIM')).status).toBe(204);
    const after = await admin()<{ rules: { kind: string; subject: string }[] }>('GET', '/v1/admin/policy');
    expect(after.body.rules.map((r) => `${r.kind}:${r.subject}`).sort()).toEqual([
      'app:jira',
      'group:Contractors',
    ]);
  });

  it('users: resetting an authenticator is 204, resetting nobody 404', async () => {
    await enroll('zoe');
    expect((await admin()('DELETE', '/v1/admin/users/Zoe/enrollment')).status).toBe(204);
    expect(await enrolledUsers('zoe')).toBe(0);
    expectProblem(
      await admin()('DELETE', '/v1/admin/users/zoe/enrollment'),
      404,
      /zoe has no authenticator to reset/,
    );
  });

  it('a NUL character in a username is a 400 that names it, never a 500', async () => {
    expectProblem(await admin()('DELETE', '/v1/admin/users/%00/enrollment'), 400, /NUL character/);
    expectProblem(await admin()('GET', '/v1/admin/audit?user=%00'), 400, /querystring\.user/);
  });
});

describe('anything else', () => {
  it('an unknown route or method is a 404 problem naming it', async () => {
    expectProblem(await as('jira')('GET', '/v1/nothing-here'), 404, /no route GET \/v1\/nothing-here/);
    expectProblem(await as('jira')('DELETE', '/v1/login-events'), 404, /no route DELETE \/v1\/login-events/);
  });

  it('health: /healthz is ok and /readyz reports Kafka, Redis and Postgres', async () => {
    expect((await anonymous()('GET', '/healthz')).body).toEqual({ status: 'ok' });
    expect((await anonymous()('GET', '/readyz')).body).toEqual({
      ready: true,
      checks: { kafka: true, redis: true, postgres: true },
    });
  });
});
