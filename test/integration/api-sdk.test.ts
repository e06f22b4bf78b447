// Issue 7: the app SDK (libs/client) against the real api, verifier and session broadcaster:
// every method once, the errors it raises, and verify-once across apps through it.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTwofoldClient, TwofoldApiError, type SessionEvent, type TwofoldClient } from '@twofold/client';
import { oathtoolTotp, secretOf, previousStepCode } from '../support/otp.js';
import { apiClient, startServices, type RunningServices } from '../support/services.js';
import { eventually, isolated, type Isolated } from '../support/stack.js';

let world: Isolated;
let services: RunningServices;
const clients: Record<string, TwofoldClient> = {};
const keys: Record<string, string> = {};
const now = () => Math.floor(Date.now() / 1000);
const ip = '198.51.100.20';

beforeAll(async () => {
  world = await isolated('api-sdk', { database: true });
  services = await startServices(world, ['api', 'verifier', 'session-broadcaster']);
  const admin = apiClient(services.apiUrl, world.env['TWOFOLD_ADMIN_KEY']);
  for (const appId of ['jira', 'confluence']) {
    const res = await admin<{ key: string }>('POST', '/v1/admin/apps', {
      appId,
      origins: [`https://${appId}.example.com`],
    });
    keys[appId] = res.body.key;
    clients[appId] = createTwofoldClient({
      baseUrl: services.apiUrl,
      appKey: res.body.key,
      appId,
      publicUrl: 'https://twofold.example.com',
    });
  }
});

afterAll(async () => {
  await services?.stop();
  await world?.cleanup();
});

describe('createTwofoldClient', () => {
  it('enrolls, decides, verifies, and the session counts in every app until logout', async () => {
    const jira = clients['jira']!;
    const confluence = clients['confluence']!;
    const started = await jira.startEnrollment('Sofia');
    expect(started.enrollUrl).toMatch(/\/enroll\/[0-9a-f-]{36}$/);
    expect(jira.enrollmentUrl(started.enrollmentId, 'https://jira.example.com/x')).toBe(
      `https://twofold.example.com/enroll/${started.enrollmentId}?returnTo=https%3A%2F%2Fjira.example.com%2Fx`,
    );
    const secret = secretOf(started.otpauthUri);
    expect(
      await jira.confirmEnrollment(started.enrollmentId, oathtoolTotp(secret, { atSeconds: now() - 3600 })),
    ).toBeNull();
    const done = await jira.confirmEnrollment(started.enrollmentId, await previousStepCode(secret));
    expect(done?.backupCodes).toHaveLength(10);

    const ssoToken = randomUUID();
    const events: SessionEvent[] = [];
    const subscription = confluence.subscribeSessionEvents({ onEvent: (event) => void events.push(event) });
    try {
      const decided = await jira.decide({ username: 'sofia', ssoToken, ip });
      expect(decided).toMatchObject({ decision: 'challenge', reason: 'policy_required', appId: 'jira' });
      if (decided.decision === 'undecided') throw new Error('no decision');
      expect(jira.challengeUrl(decided.challengeId!, 'https://jira.example.com/')).toBe(
        `https://twofold.example.com/2fa/${decided.challengeId}?returnTo=https%3A%2F%2Fjira.example.com%2F`,
      );
      expect(
        await jira.verifyCode(decided.challengeId!, oathtoolTotp(secret, { atSeconds: now() - 3600 })),
      ).toEqual({
        verified: false,
        reason: 'bad_code',
        attemptsLeft: 4,
      });
      expect(await jira.verifyCode(decided.challengeId!, oathtoolTotp(secret))).toEqual({
        verified: true,
        method: 'totp',
      });

      const status = await eventually(
        async () => {
          const s = await confluence.sessionStatus(ssoToken);
          return s.verified ? s : undefined;
        },
        15_000,
        'the session to be verified',
      );
      expect(status).toMatchObject({ verified: true, username: 'sofia', appId: 'jira' });
      expect(await confluence.decide({ username: 'sofia', ssoToken, ip })).toMatchObject({
        decision: 'skip',
        reason: 'session_verified',
      });
      await eventually(async () =>
        events.some((e) => e.type === 'twofold.session.validated') ? true : undefined,
      );

      await jira.logout({ username: 'sofia', ssoToken });
      await eventually(
        async () => ((await confluence.sessionStatus(ssoToken)).verified ? undefined : true),
        15_000,
      );
      expect(await confluence.decide({ username: 'sofia', ssoToken: randomUUID(), ip })).toMatchObject({
        decision: 'challenge',
      });
    } finally {
      await subscription.close();
    }
  });

  it('an IdP login skips; a failed login and an imported key go through', async () => {
    const jira = clients['jira']!;
    expect(
      await jira.decide({ username: 'sofia', ssoToken: randomUUID(), ip, method: 'sso', idp: 'okta' }),
    ).toMatchObject({
      decision: 'skip',
      reason: 'sso',
    });
    expect((await jira.loginFailed({ username: 'sofia', ip, reason: 'bad_password' })).id).toMatch(
      /^[0-9a-f-]{36}$/,
    );
    const secret = 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP';
    expect(
      await jira.importKey({
        username: 'tomas',
        secret,
        code: oathtoolTotp(secret, { atSeconds: now() - 7200 }),
      }),
    ).toBeNull();
    const imported = await jira.importKey({
      username: 'tomas',
      secret,
      code: await previousStepCode(secret),
    });
    expect(imported?.username).toBe('tomas');
  });

  it('raises TwofoldApiError with the api detail, and says whether a retry can help', async () => {
    const wrongKey = createTwofoldClient({ baseUrl: services.apiUrl, appKey: 'tfk_wrong', appId: 'jira' });
    const err = await wrongKey.verifyCode('AAAAAAAAAAAAAAAAAAAAAA', '123456').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TwofoldApiError);
    expect(err).toMatchObject({
      status: 401,
      retryable: false,
      detail: expect.stringMatching(/app key is not valid/),
    });
    // jira's key, claiming to be confluence.
    const impostor = createTwofoldClient({
      baseUrl: services.apiUrl,
      appKey: keys['jira']!,
      appId: 'confluence',
    });
    await expect(impostor.loginSucceeded({ username: 'a', ssoToken: 't', ip })).rejects.toMatchObject({
      status: 403,
      detail: 'data.appId must be "jira", the app whose key was used',
    });
    const unknown = await clients['jira']!.verifyCode('AAAAAAAAAAAAAAAAAAAAAA', '123456').catch(
      (e: unknown) => e,
    );
    expect(unknown).toMatchObject({ status: 404, detail: expect.stringMatching(/sign in again/) });
    const badIp = await clients['jira']!.loginSucceeded({
      username: 'a',
      ssoToken: 't',
      ip: 'nowhere',
    }).catch((e: unknown) => e);
    expect(badIp).toMatchObject({ status: 422, detail: expect.stringMatching(/ip/) });
  });
});
