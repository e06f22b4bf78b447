// Issue 7: the api's hardening, against a real api process — rate limits keyed by challenge
// and app key (not IP), security headers, body limits, and an OpenAPI document that
// describes every route.
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashSessionToken } from '@twofold/contracts';
import { createRedis, waitForRedis, type Redis } from '@twofold/redis';
import { createChallengeStore, type ChallengeStore } from '@twofold/state';
import { formOf, pageVisitor } from '../support/pages.js';
import { apiClient, startServices, type RunningServices } from '../support/services.js';
import { isolated, type Isolated } from '../support/stack.js';

let world: Isolated;
let services: RunningServices;
let redis: Redis;
let challenges: ChallengeStore;
const keys: Record<string, string> = {};
const as = (appId: string) => apiClient(services.apiUrl, keys[appId]);
const admin = () => apiClient(services.apiUrl, world.env['TWOFOLD_ADMIN_KEY']);

const newChallenge = (appId = 'jira') =>
  challenges.create({
    username: `user-${randomUUID().slice(0, 8)}`,
    appId,
    session: hashSessionToken(randomUUID()),
    ip: '192.0.2.1',
    loginEventId: randomUUID(),
  });
const verify = (appId: string, challengeId: string) =>
  as(appId)<{ detail?: string; verified?: boolean; retryAfterSeconds?: number }>(
    'POST',
    `/v1/challenges/${challengeId}/verify`,
    { code: '000000' },
  );
const event = (appId: string) => ({
  type: 'twofold.login.failed',
  subject: 'someone',
  data: { appId, ip: '192.0.2.1', reason: 'bad_password' },
});

beforeAll(async () => {
  world = await isolated('api-hardening', { database: true });
  services = await startServices(world, ['api'], {
    RATE_LIMIT_VERIFY_PER_CHALLENGE: '3',
    RATE_LIMIT_VERIFY_PER_APP: '6',
    RATE_LIMIT_EVENTS_PER_APP: '5',
  });
  redis = createRedis(world.env['REDIS_URL']!, 'state');
  await waitForRedis(redis);
  challenges = createChallengeStore(redis, world.config.redis.keyPrefix);
  for (const appId of ['jira', 'confluence']) {
    const res = await admin()<{ key: string }>('POST', '/v1/admin/apps', { appId });
    keys[appId] = res.body.key;
  }
});

afterAll(async () => {
  await redis?.quit();
  await services?.stop();
  await world?.cleanup();
});

describe('rate limits', () => {
  it('code verification is limited per challenge (API and hosted page share the count), then per app key', async () => {
    const a = await newChallenge();
    for (let i = 0; i < 3; i++) expect((await verify('jira', a.challengeId)).body.verified).toBe(false);
    const limited = await verify('jira', a.challengeId);
    expect(limited.status).toBe(429);
    expect(limited.headers.get('content-type')).toContain('application/problem+json');
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(limited.body.detail).toMatch(
      /^too many codes were submitted for this challenge \(3 per minute\); try again in \d+ s$/,
    );
    expect(limited.body.retryAfterSeconds).toBeGreaterThan(0);

    // The hosted page counts against the same challenge and answers with a page.
    const visitor = pageVisitor(services.apiUrl);
    const form = formOf((await visitor.get(`/2fa/${a.challengeId}`)).html);
    const page = await visitor.post(form.action, { ...form.fields, code: '000000' });
    expect(page.status).toBe(429);
    expect(page.headers.get('content-type')).toContain('text/html');
    expect(page.html).toContain('Too many attempts');

    // Same caller, same IP, another challenge: not limited.
    const b = await newChallenge();
    for (let i = 0; i < 3; i++) expect((await verify('jira', b.challengeId)).status).toBe(200);
    // Six verifications by jira in this minute: its seventh is refused whatever the challenge.
    const c = await newChallenge();
    const appLimited = await verify('jira', c.challengeId);
    expect(appLimited.status).toBe(429);
    expect(appLimited.body.detail).toMatch(
      /this app verifies codes faster than its limit allows \(6 per minute\)/,
    );
    // Another app is not affected.
    const d = await newChallenge('confluence');
    expect((await verify('confluence', d.challengeId)).status).toBe(200);
    // The refused attempts were never counted on the challenge.
    expect((await challenges.get(c.challengeId))?.attempts).toBe(0);
  });

  it('event intake is limited per app key', async () => {
    for (let i = 0; i < 5; i++)
      expect((await as('jira')('POST', '/v1/login-events', event('jira'))).status).toBe(202);
    const limited = await as('jira')<{ detail: string }>('POST', '/v1/login-events', event('jira'));
    expect(limited.status).toBe(429);
    expect(limited.body.detail).toMatch(
      /publishes login events faster than its limit allows \(5 per minute\)/,
    );
    expect((await as('confluence')('POST', '/v1/login-events', event('confluence'))).status).toBe(202);
  });
});

describe('headers and limits', () => {
  it('every JSON answer carries the security headers and a CSP that allows nothing', async () => {
    for (const res of [
      await admin()('GET', '/v1/admin/apps'),
      await as('jira')('GET', '/v1/none'),
      await admin()('GET', '/healthz'),
    ]) {
      expect(res.headers.get('content-security-policy')).toBe(
        "default-src 'none';base-uri 'none';form-action 'none';frame-ancestors 'none'",
      );
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
      expect(res.headers.get('x-frame-options')).toBe('DENY');
      expect(res.headers.get('referrer-policy')).toBe('no-referrer');
      expect(res.headers.get('cross-origin-resource-policy')).toBe('same-origin');
      expect(res.headers.get('x-powered-by')).toBeNull();
    }
  });

  it('listens with a deep accept queue, so a burst of new connections is not dropped', () => {
    // With Node's default backlog (511), 64 connections opened at once overflowed the accept
    // queue on the test machine (TcpExtListenOverflows), and each dropped SYN waits 1 s.
    const port = new URL(services.apiUrl).port;
    const somaxconn = Number(readFileSync('/proc/sys/net/core/somaxconn', 'utf8'));
    const listening = execFileSync('ss', ['-ltnH', `sport = :${port}`], { encoding: 'utf8' });
    const backlog = Number(listening.trim().split(/\s+/)[2]); // Send-Q of a listener: its backlog
    expect(backlog).toBe(Math.min(4096, somaxconn));
  });

  it('bodies are limited per route, and the problem says the limit', async () => {
    const big = (bytes: number) => ({ mode: 'require', pad: 'x'.repeat(bytes) });
    const rule = await admin()<{ detail: string }>('PUT', '/v1/admin/policy/users/kim', big(2_000));
    expect(rule.status).toBe(413);
    expect(rule.body.detail).toBe('the request body is larger than this route accepts (1 KiB)');
    const enroll = await as('confluence')<{ detail: string }>('POST', '/v1/enrollments', {
      username: 'x'.repeat(5_000),
    });
    expect(enroll.status).toBe(413);
    expect(enroll.body.detail).toMatch(/\(4 KiB\)/);
  });
});

describe('OpenAPI at /docs', () => {
  it('documents every route with a tag, a summary, its success answer and problem+json errors', async () => {
    const res = await fetch(`${services.apiUrl}/docs/json`);
    expect(res.status).toBe(200);
    const doc = (await res.json()) as {
      openapi: string;
      paths: Record<
        string,
        Record<string, { tags?: string[]; summary?: string; responses?: Record<string, unknown> }>
      >;
    };
    expect(doc.openapi).toMatch(/^3\./);
    const operations = Object.entries(doc.paths).flatMap(([path, methods]) =>
      Object.entries(methods).map(([method, op]) => ({ id: `${method.toUpperCase()} ${path}`, op })),
    );
    const ids = operations.map((o) => o.id);
    for (const expected of [
      'POST /v1/login-events',
      'POST /v1/challenges/{challengeId}/verify',
      'POST /v1/enrollments',
      'POST /v1/enrollments/{enrollmentId}/confirm',
      'POST /v1/enrollments/import',
      'GET /v1/admin/apps',
      'POST /v1/admin/apps',
      'GET /v1/admin/policy',
      'PUT /v1/admin/policy',
      'PUT /v1/admin/policy/{kind}/{subject}',
      'DELETE /v1/admin/policy/{kind}/{subject}',
      'DELETE /v1/admin/users/{username}/enrollment',
      'GET /2fa/{challengeId}',
      'POST /2fa/{challengeId}',
      'GET /enroll/{enrollmentId}',
      'POST /enroll/{enrollmentId}',
    ]) {
      expect(ids).toContain(expected);
    }
    const missing = operations.flatMap(({ id, op }) => {
      const codes = Object.keys(op.responses ?? {});
      const problems: string[] = [];
      if (!op.tags?.length) problems.push(`${id}: no tag`);
      if (!op.summary) problems.push(`${id}: no summary`);
      if (!codes.some((c) => /^2/.test(c) || c === '303')) problems.push(`${id}: no success response`);
      if (!id.includes(' /2fa/') && !id.includes(' /enroll/') && !codes.includes('4XX'))
        problems.push(`${id}: no problem response (has ${codes.join(', ')})`);
      return problems;
    });
    expect(missing).toEqual([]);
  });

  it('the UI is served with a CSP that allows no inline script', async () => {
    const res = await fetch(`${services.apiUrl}/docs/static/index.html`);
    expect(res.status).toBe(200);
    const csp = res.headers.get('content-security-policy')!;
    const scripts = /script-src ([^;]*)/.exec(csp)?.[1];
    expect(scripts).toMatch(/^'self'/);
    expect(scripts).not.toContain('unsafe-inline');
    expect(csp).toContain("script-src-attr 'none'");
    expect(csp).not.toContain('upgrade-insecure-requests');
  });
});
