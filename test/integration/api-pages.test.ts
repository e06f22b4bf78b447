// Issue 7: the hosted pages without a browser — what they send (headers, CSP, CSRF cookie,
// accessible markup, escaping) and how they answer every path through the form.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashSessionToken } from '@twofold/contracts';
import { createRedis, waitForRedis, type Redis } from '@twofold/redis';
import { createChallengeStore, type ChallengeStore } from '@twofold/state';
import { createPool, type Pool } from '@twofold/store';
import { oathtoolTotp, secretOf, previousStepCode } from '../support/otp.js';
import { flat, formOf, pageVisitor, tagOf, textOf } from '../support/pages.js';
import { apiClient, startServices, type RunningServices } from '../support/services.js';
import { isolated, type Isolated } from '../support/stack.js';

let world: Isolated;
let services: RunningServices;
let redis: Redis;
let challenges: ChallengeStore;
let pool: Pool;
let jiraKey: string;
const RETURN_TO = 'https://jira.example.com/secure/Dashboard.jspa?selectPageId=1&x=<y>';
const jira = () => apiClient(services.apiUrl, jiraKey);
const now = () => Math.floor(Date.now() / 1000);
const oldCode = (secret: string) => oathtoolTotp(secret, { atSeconds: now() - 7200 });

async function enroll(username: string): Promise<string> {
  const started = await jira()<{ enrollmentId: string; otpauthUri: string }>('POST', '/v1/enrollments', {
    username,
  });
  const secret = secretOf(started.body.otpauthUri);
  const confirmed = await jira()('POST', `/v1/enrollments/${started.body.enrollmentId}/confirm`, {
    code: await previousStepCode(secret),
  });
  expect(confirmed.status).toBe(200);
  return secret;
}

async function challengeFor(username: string): Promise<string> {
  const res = await jira()<{ decision: string; challengeId: string }>(
    'POST',
    '/v1/login-events?wait=decision&timeoutMs=15000',
    {
      type: 'twofold.login.succeeded',
      subject: username,
      data: {
        appId: 'jira',
        session: hashSessionToken(randomUUID()),
        method: 'password',
        ip: '198.51.100.4',
      },
    },
  );
  expect(res.body.decision).toBe('challenge');
  return res.body.challengeId;
}

const promptUrl = (challengeId: string, returnTo = RETURN_TO) =>
  `/2fa/${challengeId}?${new URLSearchParams({ returnTo }).toString()}`;

beforeAll(async () => {
  world = await isolated('api-pages', { database: true });
  services = await startServices(world, ['api', 'verifier']);
  redis = createRedis(world.env['REDIS_URL']!, 'state');
  await waitForRedis(redis);
  challenges = createChallengeStore(redis, world.config.redis.keyPrefix);
  pool = createPool({ url: world.config.database.url, schema: world.config.database.schema, max: 2 });
  const res = await apiClient(services.apiUrl, world.env['TWOFOLD_ADMIN_KEY'])<{ key: string }>(
    'POST',
    '/v1/admin/apps',
    {
      appId: 'jira',
      name: 'Jira <Production>',
      origins: ['https://jira.example.com'],
    },
  );
  jiraKey = res.body.key;
});

afterAll(async () => {
  await redis?.quit();
  await pool?.end();
  await services?.stop();
  await world?.cleanup();
});

describe('GET /2fa/{challengeId}', () => {
  it('is an accessible form with a CSRF token, a strict CSP and no script', async () => {
    await enroll('alba');
    const challengeId = await challengeFor('alba');
    const visitor = pageVisitor(services.apiUrl);
    const page = await visitor.get(promptUrl(challengeId));
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(page.headers.get('cache-control')).toBe('no-store');
    expect(page.headers.get('referrer-policy')).toBe('no-referrer');
    expect(page.headers.get('x-frame-options')).toBe('DENY');
    const csp = page.headers.get('content-security-policy')!;
    expect(csp).toBe(
      "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self' https://jira.example.com; frame-ancestors 'none'; base-uri 'none'",
    );
    expect(page.headers.getSetCookie().join()).toMatch(
      /^twofold-csrf=[^;]+; Path=\/; HttpOnly; SameSite=Strict$/,
    );

    expect(page.html).toMatch(/^<!doctype html>\n<html lang="en">/);
    expect(page.html).not.toMatch(/<script|style=|onerror=|onclick=/i);
    expect(page.html).toContain('<label for="code">Code from your authenticator app</label>');
    const input = tagOf(page.html, 'code');
    for (const attribute of [
      'name="code"',
      'autocomplete="one-time-code"',
      'inputmode="numeric"',
      'autofocus',
      'required',
      'aria-describedby="code-hint"',
    ]) {
      expect(input).toContain(attribute);
    }
    expect(textOf(page.html, 'code-hint')).toMatch(/6-digit code/);
    expect(page.html).toContain(
      'signing in to <strong>Jira &lt;Production&gt;</strong> as <strong>alba</strong>',
    );
    const form = formOf(page.html);
    expect(form.fields['_csrf']).toMatch(/.{20,}/);
    expect(form.fields['returnTo']).toBe(new URL(RETURN_TO).href);

    const css = await fetch(`${services.apiUrl}/assets/twofold.css`);
    expect(css.headers.get('content-type')).toBe('text/css; charset=utf-8');
    expect(await css.text()).toContain(':focus-visible');
  });

  it('escapes what it shows: a username made of markup stays text', async () => {
    const name = `<img src=x onerror=alert(1)>"o'malley"&co`;
    await enroll(name);
    const challengeId = await challengeFor(name);
    const page = await pageVisitor(services.apiUrl).get(`/2fa/${challengeId}`);
    expect(page.status).toBe(200);
    expect(page.html).not.toContain('<img src=x');
    expect(page.html).toContain('&lt;img src=x onerror=alert(1)&gt;&quot;o&#39;malley&quot;&amp;co');
  });

  it('drops a returnTo outside the app origins: no redirect target in the form or the CSP', async () => {
    await enroll('bruno');
    const challengeId = await challengeFor('bruno');
    for (const returnTo of [
      'https://evil.example.net/',
      'https://jira.example.com.evil.net/',
      'javascript:alert(1)',
    ]) {
      const page = await pageVisitor(services.apiUrl).get(promptUrl(challengeId, returnTo));
      expect(page.status).toBe(200);
      expect(formOf(page.html).fields['returnTo']).toBeUndefined();
      expect(page.headers.get('content-security-policy')).toContain("form-action 'self';");
    }
  });

  it('unknown, malformed and spent challenges get a page that says to sign in again (404)', async () => {
    for (const path of ['/2fa/AAAAAAAAAAAAAAAAAAAAAA', '/2fa/not-a-challenge', `/2fa/${'x'.repeat(64)}`]) {
      const page = await pageVisitor(services.apiUrl).get(path);
      expect(page.status, path).toBe(404);
      expect(page.headers.get('content-type')).toContain('text/html');
      expect(page.html).toContain('This sign-in link has expired');
      expect(page.html).toContain('sign in again');
    }
  });
});

describe('POST /2fa/{challengeId}', () => {
  it('refuses a post without the CSRF cookie or with a forged token (403 page), spending no attempt', async () => {
    await enroll('carla');
    const challengeId = await challengeFor('carla');
    const visitor = pageVisitor(services.apiUrl);
    const { action, fields } = formOf((await visitor.get(promptUrl(challengeId))).html);
    const stranger = pageVisitor(services.apiUrl); // no cookie: a cross-site post
    const noCookie = await stranger.post(action, { ...fields, code: '123456' });
    expect(noCookie.status).toBe(403);
    expect(noCookie.html).toContain('This form has expired');
    const forged = await visitor.post(action, { ...fields, _csrf: 'forged-token', code: '123456' });
    expect(forged.status).toBe(403);
    const missing = await visitor.post(action, { code: '123456' });
    expect(missing.status).toBe(403);
    expect((await challenges.get(challengeId))?.attempts).toBe(0);
  });

  it('a wrong code shows the error tied to the field, with the attempts left (422)', async () => {
    const secret = await enroll('dario');
    const challengeId = await challengeFor('dario');
    const visitor = pageVisitor(services.apiUrl);
    const { action, fields } = formOf((await visitor.get(promptUrl(challengeId))).html);
    const wrong = await visitor.post(action, { ...fields, code: oldCode(secret) });
    expect(wrong.status).toBe(422);
    expect(wrong.html).toMatch(/<title>Error: /);
    const input = tagOf(wrong.html, 'code');
    expect(input).toContain('aria-describedby="code-hint code-error"');
    expect(input).toContain('aria-invalid="true"');
    expect(textOf(wrong.html, 'code-error')).toBe(
      "That code is not right. Check that your phone's clock is right and type the code shown now. 4 attempts left.",
    );
    expect(wrong.html).toContain('role="alert"');

    // The re-rendered form works: a malformed code costs no attempt, the right one returns.
    const again = formOf(wrong.html);
    const malformed = await visitor.post(again.action, { ...again.fields, code: '12345' });
    expect(malformed.status).toBe(400);
    expect(textOf(malformed.html, 'code-error')).toMatch(/has 6 digits/);
    expect((await challenges.get(challengeId))?.attempts).toBe(1);
    const empty = await visitor.post(again.action, { ...again.fields, code: '  ' });
    expect(empty.status).toBe(400);
    const right = await visitor.post(again.action, { ...again.fields, code: oathtoolTotp(secret) });
    expect(right.status).toBe(303);
    expect(right.location).toBe(new URL(RETURN_TO).href);
    expect(await challenges.get(challengeId)).toBeUndefined();

    // The challenge is answered once.
    const replay = await visitor.post(again.action, { ...again.fields, code: oathtoolTotp(secret) });
    expect(replay.status).toBe(404);
    expect(replay.html).toContain('This sign-in link has expired');
  });

  it('without a registered returnTo the right code shows a success page instead of redirecting', async () => {
    const secret = await enroll('elena');
    const challengeId = await challengeFor('elena');
    const visitor = pageVisitor(services.apiUrl);
    const page = await visitor.get(promptUrl(challengeId, 'https://evil.example.net/steal'));
    const { action, fields } = formOf(page.html);
    // Even a returnTo slipped into the form is checked again.
    const done = await visitor.post(action, {
      ...fields,
      returnTo: 'https://evil.example.net/steal',
      code: oathtoolTotp(secret),
    });
    expect(done.status).toBe(200);
    expect(done.location).toBeNull();
    expect(done.html).toContain("You're verified");
    expect(done.html).toContain('Jira &lt;Production&gt;');
  });

  it('a used code is "already used"; five wrong codes end the challenge (410); a backup code works', async () => {
    const secret = await enroll('fabio');
    const first = await challengeFor('fabio');
    const visitor = pageVisitor(services.apiUrl);
    let form = formOf((await visitor.get(promptUrl(first))).html);
    const code = oathtoolTotp(secret);
    expect((await visitor.post(form.action, { ...form.fields, code })).status).toBe(303);

    const second = await challengeFor('fabio');
    form = formOf((await visitor.get(promptUrl(second))).html);
    const replayed = await visitor.post(form.action, { ...form.fields, code });
    expect(replayed.status).toBe(422);
    expect(textOf(replayed.html, 'code-error')).toMatch(/already used/);
    let last = replayed;
    for (let i = 0; i < 4; i++)
      last = await visitor.post(form.action, { ...form.fields, code: oldCode(secret) });
    expect(textOf(last.html, 'code-error')).toMatch(/last attempt/);
    const spent = await visitor.post(form.action, {
      ...form.fields,
      code: oathtoolTotp(secret, { atSeconds: now() + 30 }),
    });
    expect(spent.status).toBe(410);
    expect(spent.html).toContain('Too many wrong codes');

    const third = await challengeFor('fabio');
    const backupPage = await visitor.get(`/2fa/${third}?backup=1`);
    expect(backupPage.html).not.toContain('inputmode="numeric"');
    expect(backupPage.html).toContain('<label for="code">Backup code</label>');
    form = formOf(backupPage.html);
    expect(form.action).toBe(`/2fa/${third}?backup=1`);
    const wrongBackup = await visitor.post(form.action, { ...form.fields, code: 'zzzzz-zzzzz' });
    expect(wrongBackup.status).toBe(422);
    const malformedBackup = await visitor.post(form.action, { ...form.fields, code: 'not a code' });
    expect(textOf(malformedBackup.html, 'code-error')).toMatch(/10 letters and digits/);
  });

  it('an oversized or non-form body gets a page, not JSON', async () => {
    await enroll('gaia');
    const challengeId = await challengeFor('gaia');
    const visitor = pageVisitor(services.apiUrl);
    const { action, fields } = formOf((await visitor.get(promptUrl(challengeId))).html);
    const huge = await visitor.post(action, { ...fields, code: '1'.repeat(5000) });
    expect(huge.status).toBe(413);
    expect(huge.headers.get('content-type')).toContain('text/html');
    const json = await fetch(`${services.apiUrl}${action}`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        cookie: [...visitor.jar].map(([k, v]) => `${k}=${v}`).join('; '),
      },
      body: JSON.stringify({ ...fields, code: '123456' }),
    });
    expect(json.headers.get('content-type')).toContain('text/html');
    expect(json.status).toBe(415);
    expect((await challenges.get(challengeId))?.attempts).toBe(0);
  });
});

describe('GET and POST /enroll/{enrollmentId}', () => {
  it('shows the QR code and the manual key; a wrong code errs; the right one shows the backup codes once', async () => {
    const started = await jira()<{ enrollmentId: string; otpauthUri: string; enrollUrl: string }>(
      'POST',
      '/v1/enrollments',
      {
        username: 'hugo',
      },
    );
    const secret = secretOf(started.body.otpauthUri);
    const visitor = pageVisitor(services.apiUrl);
    const path = `/enroll/${started.body.enrollmentId}?${new URLSearchParams({ returnTo: RETURN_TO }).toString()}`;
    const page = await visitor.get(path);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-security-policy')).toContain("img-src 'self' data:");
    expect(page.html).not.toMatch(/<script|style=/i);
    expect(flat(page.html)).toMatch(
      /<img class="qr" src="data:image\/svg\+xml;base64,[A-Za-z0-9+/=]+" width="220" height="220" alt="QR code of your twofold key/,
    );
    expect(textOf(page.html, 'manual-key')!.replace(/\s/g, '')).toBe(secret);
    expect(flat(page.html)).toContain('<dt>Account</dt> <dd>hugo</dd>');
    expect(page.html).toContain('autocomplete="one-time-code"');

    let form = formOf(page.html);
    const wrong = await visitor.post(form.action, { ...form.fields, code: oldCode(secret) });
    expect(wrong.status).toBe(422);
    expect(textOf(wrong.html, 'code-error')).toMatch(/That code is not right/);
    expect(wrong.html).toContain('aria-invalid="true"');
    expect(
      await pool.query('SELECT 1 FROM enrollments WHERE username = $1', ['hugo']).then((r) => r.rowCount),
    ).toBe(0);

    form = formOf(wrong.html);
    const forged = await pageVisitor(services.apiUrl).post(form.action, {
      ...form.fields,
      code: oathtoolTotp(secret),
    });
    expect(forged.status).toBe(403);

    const done = await visitor.post(form.action, { ...form.fields, code: oathtoolTotp(secret) });
    expect(done.status).toBe(200);
    expect(done.headers.get('cache-control')).toBe('no-store');
    const codes = [...done.html.matchAll(/<li><code>([0-9a-z]{5}-[0-9a-z]{5})<\/code><\/li>/g)].map(
      (m) => m[1],
    );
    expect(codes).toHaveLength(10);
    expect(done.html).toContain(
      `href="${new URL(RETURN_TO).href.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;')}"`,
    );
    expect(done.html).toContain('continue to Jira &lt;Production&gt;');
    expect(
      await pool.query('SELECT 1 FROM enrollments WHERE username = $1', ['hugo']).then((r) => r.rowCount),
    ).toBe(1);

    // Shown once: the link is spent.
    const again = await visitor.get(path);
    expect(again.status).toBe(404);
    expect(again.html).toContain('This setup link has expired');
  });

  it('unknown and malformed enrollment ids are a 404 page', async () => {
    for (const path of [`/enroll/${randomUUID()}`, '/enroll/not-a-uuid']) {
      const page = await pageVisitor(services.apiUrl).get(path);
      expect(page.status).toBe(404);
      expect(page.html).toContain('This setup link has expired');
    }
  });
});
