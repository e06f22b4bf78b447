// The scripted day of the audit trail the analysts' views and docs are checked against:
// failed logins (a spraying IP, a user failing from one IP over two hours), a code failure,
// an attack, lockouts and a lift, enrollments and a reset, and logins with their decisions
// and verifications in three apps. Shared by audit-views.test.ts and audit-docs.test.ts.
import { randomUUID } from 'node:crypto';
import { createEvent, hashSessionToken, type AnyTwofoldEvent, type TopicRole } from '@twofold/contracts';

export interface ScenarioEvent {
  role: TopicRole;
  event: AnyTwofoldEvent;
}

/** A row as the tests compare it: numeric strings (bigint, numeric) as numbers, dates as ISO text. */
export const numbers = <T extends Record<string, unknown>>(row: T) =>
  Object.fromEntries(
    Object.entries(row).map(([k, v]) => [
      k,
      typeof v === 'string' && /^-?\d+(\.\d+)?$/.test(v)
        ? Number(v)
        : v instanceof Date
          ? v.toISOString()
          : v,
    ]),
  );

export const at = (base: number, minutes: number) => new Date(base + minutes * 60_000);

/**
 * The scenario with its first hour starting at h1 (ms since epoch, a whole UTC hour whose
 * day, the day before and the next have audit partitions): its events run from h1 - 60 min
 * (enrollments) to h1 + 2 h (H2 = h1 + 1 h).
 */
export function auditScenario(h1: number) {
  const H1 = h1;
  const H2 = H1 + 3_600_000;
  const IP_A = '203.0.113.5';
  const IP_B = '198.51.100.7';
  const S1 = hashSessionToken(`alice-${randomUUID()}`);
  const S2 = hashSessionToken(`dave-${randomUUID()}`);
  const S3 = hashSessionToken(`bob-${randomUUID()}`);
  const S4 = hashSessionToken(`carol-${randomUUID()}`);

  function events(): ScenarioEvent[] {
    const out: ScenarioEvent[] = [];
    const add = (role: TopicRole, event: AnyTwofoldEvent) => out.push({ role, event });
    const failed = (
      user: string,
      ip: string,
      app: string,
      when: Date,
      reason: 'bad_password' | 'unknown_user' = 'bad_password',
    ) =>
      add(
        'login',
        createEvent('twofold.login.failed', `app/${app}`, user, { appId: app, ip, reason }, { time: when }),
      );

    // Failed logins: IP A sprays seven names in H1; alice fails from IP B in H1 and H2.
    ['u1', 'u2', 'u3', 'u4', 'u5'].forEach((u, i) => failed(u, IP_A, 'jira', at(H1, i + 1)));
    failed('ghost1', IP_A, 'jira', at(H1, 6), 'unknown_user');
    failed('ghost2', IP_A, 'jira', at(H1, 7), 'unknown_user');
    [10, 11, 12].forEach((m) => failed('alice', IP_B, 'confluence', at(H1, m)));
    [5, 6].forEach((m) => failed('alice', IP_B, 'confluence', at(H2, m)));
    add(
      'secondFactor',
      createEvent(
        'twofold.2fa.failed',
        'service/api',
        'alice',
        { appId: 'confluence', session: S1, ip: IP_B, reason: 'bad_code' },
        { time: at(H1, 13) },
      ),
    );

    // Lockouts and attacks.
    add(
      'security',
      createEvent(
        'twofold.attack.detected',
        'service/lockout-detector',
        IP_A,
        { kind: 'credential_stuffing', key: IP_A, evidence: { users: 7 } },
        { time: at(H1, 8) },
      ),
    );
    add(
      'security',
      createEvent(
        'twofold.lockout.imposed',
        'service/lockout-detector',
        IP_A,
        { scope: 'ip', key: IP_A, until: null, failures: 7, rule: 'ip-20-in-5m' },
        { time: at(H1, 9) },
      ),
    );
    add(
      'security',
      createEvent(
        'twofold.lockout.imposed',
        'service/lockout-detector',
        'alice',
        { scope: 'user', key: 'alice', until: at(H2, 30).toISOString(), failures: 5, rule: 'user-5-in-15m' },
        { time: at(H1, 12) },
      ),
    );
    add(
      'security',
      createEvent(
        'twofold.lockout.lifted',
        'service/api',
        'alice',
        { scope: 'user', key: 'alice', by: 'admin' },
        { time: at(H1, 40) },
      ),
    );

    // Enrollment: alice, bob and dave enroll; bob's authenticator is reset; carol never enrolls.
    ['alice', 'bob', 'dave'].forEach((u, i) =>
      add(
        'secondFactor',
        createEvent(
          'twofold.enrollment.activated',
          'service/api',
          u,
          { method: 'generated' },
          { time: at(H1, -60 + i) },
        ),
      ),
    );
    add(
      'secondFactor',
      createEvent('twofold.enrollment.reset', 'service/api', 'bob', { by: 'admin' }, { time: at(H1, -30) }),
    );

    // Logins, decisions and verifications.
    const login = (
      user: string,
      app: string,
      session: string,
      minute: number,
      groups?: string[],
      method: 'password' | 'sso' = 'password',
    ) => {
      const event = createEvent(
        'twofold.login.succeeded',
        `app/${app}`,
        user,
        { appId: app, session, method, ip: '192.0.2.50', ...(groups ? { groups } : {}) },
        { time: at(H1, minute) },
      );
      add('login', event);
      return event.id;
    };
    const decided = (
      user: string,
      app: string,
      session: string,
      loginEventId: string,
      minute: number,
      decision: 'challenge' | 'skip' | 'enroll',
      reason: 'policy_required' | 'session_verified' | 'sso' | 'not_enrolled',
    ) =>
      add(
        'secondFactor',
        createEvent(
          'twofold.2fa.decided',
          'service/verifier',
          user,
          {
            loginEventId,
            appId: app,
            session,
            decision,
            reason,
            ...(decision === 'challenge' ? { challengeId: randomUUID() } : {}),
          },
          { time: at(H1, minute + 0.1) },
        ),
      );
    const verified = (user: string, app: string, session: string, minute: number) =>
      add(
        'secondFactor',
        createEvent(
          'twofold.2fa.verified',
          'service/api',
          user,
          { appId: app, session, method: 'totp' },
          { time: at(H1, minute + 0.5) },
        ),
      );

    decided(
      'alice',
      'jira',
      S1,
      login('alice', 'jira', S1, 20, ['eng', 'ops']),
      20,
      'challenge',
      'policy_required',
    );
    verified('alice', 'jira', S1, 20);
    decided(
      'alice',
      'confluence',
      S1,
      login('alice', 'confluence', S1, 25, ['eng', 'ops']),
      25,
      'skip',
      'session_verified',
    );
    decided('alice', 'bitbucket', S1, login('alice', 'bitbucket', S1, 27), 27, 'skip', 'session_verified');
    decided('bob', 'jira', S3, login('bob', 'jira', S3, 21, ['eng']), 21, 'challenge', 'policy_required');
    verified('bob', 'jira', S3, 21);
    decided('bob', 'confluence', S3, login('bob', 'confluence', S3, 30), 30, 'challenge', 'policy_required');
    verified('bob', 'confluence', S3, 30);
    decided(
      'carol',
      'confluence',
      S4,
      login('carol', 'confluence', S4, 22, ['sales']),
      22,
      'enroll',
      'not_enrolled',
    );
    decided('dave', 'jira', S2, login('dave', 'jira', S2, 23, ['eng'], 'sso'), 23, 'skip', 'sso');
    return out;
  }

  return { H1, H2, IP_A, IP_B, S1, S2, S3, S4, events: events() };
}
