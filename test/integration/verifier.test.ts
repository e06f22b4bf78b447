// Issue 3 through real Kafka, Redis and Postgres, with the api and the verifier running as
// processes and codes computed by oathtool: one secret, policy, replay protection, enrollment.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashSessionToken } from '@twofold/contracts';
import { createPool, type Pool } from '@twofold/store';
import { oathtoolTotp, secretOf, previousStepCode } from '../support/otp.js';
import { apiClient, startServices, type RunningServices } from '../support/services.js';
import { eventually, isolated, type Isolated } from '../support/stack.js';
import { readTopic } from '../support/topic-reader.js';

let world: Isolated;
let services: RunningServices;
let pool: Pool;
const keys: Record<string, string> = {};
const admin = () => apiClient(services.apiUrl, world.env['TWOFOLD_ADMIN_KEY']);
const as = (appId: string) => apiClient(services.apiUrl, keys[appId]);
const now = () => Math.floor(Date.now() / 1000);

type Decision = { decision: string; reason: string; challengeId?: string; lockedUntil?: string | null };

async function login(
  appId: string,
  username: string,
  session: string,
  extra: Record<string, unknown> = {},
): Promise<Decision> {
  const res = await as(appId)<Decision>('POST', '/v1/login-events?wait=decision&timeoutMs=15000', {
    type: 'twofold.login.succeeded',
    subject: username,
    data: { appId, session, method: 'password', ip: '203.0.113.9', ...extra },
  });
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return res.body;
}
const verify = (appId: string, challengeId: string, code: string) =>
  as(appId)<{ verified: boolean; reason?: string; method?: string; detail?: string }>(
    'POST',
    `/v1/challenges/${challengeId}/verify`,
    { code },
  );
const newSession = () => hashSessionToken(randomUUID());

async function enroll(username: string): Promise<{ secret: string; backupCodes: string[] }> {
  const started = await as('jira')<{ enrollmentId: string; otpauthUri: string; qrSvg: string }>(
    'POST',
    '/v1/enrollments',
    {
      username,
    },
  );
  expect(started.status).toBe(201);
  expect(started.body.qrSvg).toContain('<svg');
  const secret = secretOf(started.body.otpauthUri);
  // A code of the previous step: the current one stays free for the test's own logins.
  const confirmed = await as('jira')<{ backupCodes: string[] }>(
    'POST',
    `/v1/enrollments/${started.body.enrollmentId}/confirm`,
    {
      code: await previousStepCode(secret),
    },
  );
  expect(confirmed.status, JSON.stringify(confirmed.body)).toBe(200);
  return { secret, backupCodes: confirmed.body.backupCodes };
}

beforeAll(async () => {
  world = await isolated('verifier', { database: true });
  services = await startServices(world, ['api', 'verifier', 'session-broadcaster', 'lockout-detector']);
  pool = createPool({ url: world.config.database.url, schema: world.config.database.schema, max: 2 });
  for (const appId of ['jira', 'confluence', 'bitbucket']) {
    const res = await admin()<{ key: string }>('POST', '/v1/admin/apps', { appId });
    expect(res.status).toBe(201);
    keys[appId] = res.body.key;
  }
});

afterAll(async () => {
  await pool?.end();
  const codes = await services?.stop();
  await world?.cleanup();
  for (const [name, code] of codes ?? []) expect(code, `${name} exit code after SIGTERM`).toBe(0);
});

describe('one secret, every app', () => {
  it('enrolls with a QR secret; a jira login is challenged and the oathtool code verifies', async () => {
    const { secret, backupCodes } = await enroll('Alice');
    expect(backupCodes).toHaveLength(10);
    const decision = await login('jira', 'alice', newSession());
    expect(decision).toMatchObject({ decision: 'challenge', reason: 'policy_required' });
    const result = await verify('jira', decision.challengeId!, oathtoolTotp(secret));
    expect(result.body).toEqual({ verified: true, method: 'totp' });
    // The challenge is answered once.
    expect((await verify('jira', decision.challengeId!, oathtoolTotp(secret))).status).toBe(404);
  });

  it('a code used in jira is refused in bitbucket (replayed), and an older code after a newer one too', async () => {
    const { secret } = await enroll('erin');
    const code = oathtoolTotp(secret);
    const jira = await login('jira', 'erin', newSession());
    expect((await verify('jira', jira.challengeId!, code)).body).toMatchObject({ verified: true });
    const bitbucket = await login('bitbucket', 'erin', newSession());
    expect((await verify('bitbucket', bitbucket.challengeId!, code)).body).toMatchObject({
      verified: false,
      reason: 'replayed',
    });
    // Still inside the ±1 window, but older than the accepted step.
    const older = await previousStepCode(secret);
    const again = await login('confluence', 'erin', newSession());
    expect((await verify('confluence', again.challengeId!, older)).body).toMatchObject({
      verified: false,
      reason: 'replayed',
    });
  });

  it('two apps submitting the same fresh code at the same instant: exactly one succeeds', async () => {
    const { secret } = await enroll('frank');
    const a = await login('jira', 'frank', newSession());
    const b = await login('confluence', 'frank', newSession());
    const code = oathtoolTotp(secret, { atSeconds: now() + 30 }); // the next step: fresh
    const results = await Promise.all([
      verify('jira', a.challengeId!, code),
      verify('confluence', b.challengeId!, code),
    ]);
    const verified = results.filter((r) => r.body.verified);
    expect(verified).toHaveLength(1);
    expect(results.find((r) => !r.body.verified)!.body.reason).toBe('replayed');
  });

  it('a backup code works once', async () => {
    const { backupCodes } = await enroll('gina');
    const first = await login('jira', 'gina', newSession());
    expect((await verify('jira', first.challengeId!, backupCodes[0]!)).body).toEqual({
      verified: true,
      method: 'backup_code',
    });
    const second = await login('jira', 'gina', newSession());
    expect((await verify('jira', second.challengeId!, backupCodes[0]!)).body).toMatchObject({
      verified: false,
      reason: 'bad_code',
    });
  });

  it('imports an 8-digit SHA-256 key from another authenticator', async () => {
    const secret = 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZA'; // 32 bytes
    const imported = await as('jira')<{ backupCodes: string[] }>('POST', '/v1/enrollments/import', {
      username: 'henry',
      secret: secret.toLowerCase().replace(/(.{4})/g, '$1 '),
      code: await previousStepCode(secret, { algorithm: 'SHA256', digits: 8 }),
      algorithm: 'SHA256',
      digits: 8,
    });
    expect(imported.status, JSON.stringify(imported.body)).toBe(201);
    const decision = await login('bitbucket', 'henry', newSession());
    expect(decision.decision).toBe('challenge');
    const code = oathtoolTotp(secret, { algorithm: 'SHA256', digits: 8 });
    expect(code).toHaveLength(8);
    expect((await verify('bitbucket', decision.challengeId!, code)).body).toEqual({
      verified: true,
      method: 'totp',
    });
  });

  it('an admin reset sends the user back to enrollment, and they can enroll again', async () => {
    await enroll('ivan');
    expect((await admin()('DELETE', '/v1/admin/users/ivan/enrollment')).status).toBe(204);
    expect(await login('jira', 'ivan', newSession())).toMatchObject({
      decision: 'enroll',
      reason: 'not_enrolled',
    });
    const { secret } = await enroll('ivan');
    const decision = await login('jira', 'ivan', newSession());
    expect((await verify('jira', decision.challengeId!, oathtoolTotp(secret))).body).toMatchObject({
      verified: true,
    });
    expect((await admin()('DELETE', '/v1/admin/users/nobody/enrollment')).status).toBe(404);
  });
});

describe('verify once', () => {
  it('verified in jira → confluence and bitbucket skip with session_verified; another user with that session does not', async () => {
    const { secret } = await enroll('rita');
    const session = newSession();
    const jira = await login('jira', 'rita', session);
    expect(jira.decision).toBe('challenge');
    expect((await verify('jira', jira.challengeId!, oathtoolTotp(secret))).body).toMatchObject({
      verified: true,
    });
    const skipped = await eventually(
      async () => {
        const decision = await login('confluence', 'rita', session);
        return decision.decision === 'skip' ? decision : undefined;
      },
      10_000,
      'confluence to skip',
    );
    expect(skipped).toMatchObject({ decision: 'skip', reason: 'session_verified' });
    expect(await login('bitbucket', 'Rita', session)).toMatchObject({
      decision: 'skip',
      reason: 'session_verified',
    });
    // The session hash alone proves nothing for another user.
    await enroll('sam');
    expect(await login('bitbucket', 'sam', session)).toMatchObject({
      decision: 'challenge',
      reason: 'policy_required',
    });
    // A new session of the same user is asked again.
    expect((await login('jira', 'rita', newSession())).decision).toBe('challenge');
  });
});

describe('redelivery', () => {
  it('a login delivered twice yields one and the same 2fa.decided: id, time and challenge id', async () => {
    await enroll('reda');
    const decided = await readTopic(world.kafka, world.topics.secondFactor);
    try {
      const id = `redelivered-${randomUUID()}`;
      const event = {
        type: 'twofold.login.succeeded',
        id,
        subject: 'reda',
        data: { appId: 'jira', session: newSession(), method: 'password', ip: '203.0.113.9' },
      };
      const send = () =>
        as('jira')<Decision>('POST', '/v1/login-events?wait=decision&timeoutMs=15000', event);
      const first = await send();
      expect(first.status).toBe(200);
      // The verifier reads the same event again (as after a crash before its commit).
      const again = await send();
      expect(again.body).toEqual(first.body);
      const announced = await eventually(
        async () => {
          const found = decided
            .json<{ id: string; time: string; data: Decision }>()
            .filter((e) => e.id === `decided-${id}`);
          return found.length >= 2 ? found : undefined;
        },
        15_000,
        'both deliveries decided',
      );
      expect(announced[0]!.data.challengeId).toBe(first.body.challengeId);
      // Same time too: the audit keeps rows by (time, id), so a new time would be a second row.
      expect(announced[1]).toEqual(announced[0]);
    } finally {
      await decided.stop();
    }
  });
});

describe('locked users', () => {
  it('a locked (user, IP) is denied with lockedUntil; the same user from elsewhere is challenged', async () => {
    await enroll('vic');
    for (let i = 0; i < 5; i++) {
      const res = await as('jira')('POST', '/v1/login-events', {
        type: 'twofold.login.failed',
        subject: 'vic',
        data: { appId: 'jira', ip: '198.51.100.77', reason: 'bad_password' },
      });
      expect(res.status).toBe(202);
    }
    const denied = await eventually(
      async () => {
        const decision = await login('jira', 'vic', newSession(), { ip: '198.51.100.77' });
        return decision.decision === 'deny' ? decision : undefined;
      },
      15_000,
      'the lock to apply',
    );
    expect(denied).toMatchObject({ decision: 'deny', reason: 'locked' });
    expect(Date.parse(denied.lockedUntil!)).toBeGreaterThan(Date.now());
    expect(await login('jira', 'vic', newSession(), { ip: '203.0.113.50' })).toMatchObject({
      decision: 'challenge',
    });
  });
});

describe('who must use 2FA', () => {
  it('an IdP login skips (skip/sso); a local login of the same user does not', async () => {
    await enroll('judy');
    expect(await login('jira', 'judy', newSession(), { method: 'sso', idp: 'okta' })).toMatchObject({
      decision: 'skip',
      reason: 'sso',
    });
    expect((await login('jira', 'judy', newSession())).decision).toBe('challenge');
  });

  it('a group rule "require" beats "exempt"; an exempt user skips', async () => {
    expect((await admin()('PUT', '/v1/admin/policy/groups/staff', { mode: 'exempt' })).status).toBe(200);
    expect((await admin()('PUT', '/v1/admin/policy/groups/contractors', { mode: 'require' })).status).toBe(
      200,
    );
    expect((await admin()('PUT', '/v1/admin/policy/users/Kim', { mode: 'exempt' })).status).toBe(200);
    await new Promise((r) => setTimeout(r, 1_200)); // every replica sees a change within a second
    expect(await login('jira', 'leo', newSession(), { groups: ['staff'] })).toMatchObject({
      decision: 'skip',
      reason: 'exempt',
    });
    expect(await login('jira', 'leo', newSession(), { groups: ['staff', 'contractors'] })).toMatchObject({
      decision: 'enroll',
      reason: 'not_enrolled',
    });
    expect(await login('jira', 'kim', newSession(), { groups: ['contractors'] })).toMatchObject({
      decision: 'skip',
      reason: 'exempt',
    });
    const policy = await admin()<{ rules: { kind: string; subject: string; mode: string }[] }>(
      'GET',
      '/v1/admin/policy',
    );
    expect(policy.body.rules).toContainEqual(
      expect.objectContaining({ kind: 'user', subject: 'kim', mode: 'exempt' }),
    );
  });

  it('the global default "optional" skips users who never enrolled', async () => {
    expect((await admin()('PUT', '/v1/admin/policy', { defaultMode: 'optional' })).status).toBe(200);
    await new Promise((r) => setTimeout(r, 1_200));
    expect(await login('jira', 'mona', newSession())).toMatchObject({ decision: 'skip', reason: 'exempt' });
    expect((await admin()('PUT', '/v1/admin/policy', { defaultMode: 'require' })).status).toBe(200);
  });
});

describe('bad input gets a clear 4xx and changes nothing', () => {
  it('refuses wrong-length and non-digit codes without spending an attempt', async () => {
    const { secret } = await enroll('nina');
    const decision = await login('jira', 'nina', newSession());
    for (const code of ['12345', '1234567', 'abcdef', '12 34 5a']) {
      const res = await verify('jira', decision.challengeId!, code);
      expect(res.status, code).toBe(400);
      expect(res.headers.get('content-type')).toContain('application/problem+json');
      expect(res.body.detail).toMatch(/6 or 8 digits|backup code/);
    }
    expect((await verify('jira', decision.challengeId!, oathtoolTotp(secret))).body).toMatchObject({
      verified: true,
    });
  });

  it('unknown challenge → 404; five wrong codes spend the challenge (expired)', async () => {
    expect((await verify('jira', 'AAAAAAAAAAAAAAAAAAAAAA', '123456')).status).toBe(404);
    expect((await verify('jira', 'not-a-challenge', '123456')).status).toBe(404);
    const { secret } = await enroll('oscar');
    const decision = await login('jira', 'oscar', newSession());
    const wrong = oathtoolTotp(secret, { atSeconds: now() - 3600 });
    for (let i = 0; i < 5; i++) {
      expect((await verify('jira', decision.challengeId!, wrong)).body).toMatchObject({
        verified: false,
        reason: 'bad_code',
      });
    }
    expect((await verify('jira', decision.challengeId!, oathtoolTotp(secret))).body).toMatchObject({
      verified: false,
      reason: 'expired',
    });
  });

  it('base32 junk on import → 400 and no enrollment', async () => {
    const res = await as('jira')<{ detail: string }>('POST', '/v1/enrollments/import', {
      username: 'paul',
      secret: 'not*base32!',
      code: '123456',
    });
    expect(res.status).toBe(400);
    expect(res.body.detail).toMatch(/^secret: /);
    const { rows } = await pool.query('SELECT 1 FROM enrollments WHERE username = $1', ['paul']);
    expect(rows).toHaveLength(0);
  });

  it('another app cannot verify a jira challenge', async () => {
    await enroll('quinn');
    const decision = await login('jira', 'quinn', newSession());
    expect((await verify('bitbucket', decision.challengeId!, '123456')).status).toBe(403);
  });
});
