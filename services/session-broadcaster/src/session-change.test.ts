import { describe, expect, it } from 'vitest';
import { createEvent, validateEvent, type AnyTwofoldEvent } from '@twofold/contracts';
import type { SessionOutcome } from '@twofold/state';
import { announcementId, announcementsOf, sessionChangeOf } from './session-change.js';

const session = 'ab'.repeat(32);
const time = '2026-11-28T09:00:00.000Z';
const at = Date.parse(time);
const ev = (type: string, subject: string, data: Record<string, unknown>) =>
  createEvent(type as 'twofold.logout', 'app/jira', subject, data as never, {
    id: 'e1',
    time,
  }) as AnyTwofoldEvent;

describe('sessionChangeOf', () => {
  it.each([
    [
      'a verified second factor validates the session',
      ev('twofold.2fa.verified', 'Alice', { appId: 'jira', session, method: 'totp' }),
      { kind: 'validate', session, username: 'alice', appId: 'jira', at, eventId: 'e1' },
    ],
    [
      'a logout revokes the session (terminal)',
      ev('twofold.logout', 'alice', { appId: 'bitbucket', session }),
      { kind: 'revoke', session, reason: 'logout', at, eventId: 'e1', username: 'alice' },
    ],
    [
      'a user lockout revokes all the user’s sessions',
      ev('twofold.lockout.imposed', 'alice', {
        scope: 'user',
        key: ' Alice ',
        until: null,
        failures: 9,
        rule: 'r',
      }),
      { kind: 'revoke-user', username: 'alice', reason: 'lockout', at, eventId: 'e1' },
    ],
    [
      'an admin revoking sessions names the user in the subject',
      ev('twofold.admin.sessions_revoked', 'alice', {}),
      { kind: 'revoke-user', username: 'alice', reason: 'admin', at, eventId: 'e1' },
    ],
    [
      'an admin enrollment reset may name the user in data.username',
      ev('twofold.admin.enrollment_reset', 'root', { username: 'ALICE' }),
      { kind: 'revoke-user', username: 'alice', reason: 'admin', at, eventId: 'e1' },
    ],
  ])('%s', (_name, event, change) => {
    expect(sessionChangeOf(event)).toEqual(change);
  });

  it.each([
    [
      'an IP lockout',
      ev('twofold.lockout.imposed', 'x', {
        scope: 'ip',
        key: '192.0.2.1',
        until: null,
        failures: 1,
        rule: 'r',
      }),
    ],
    [
      'a login',
      ev('twofold.login.succeeded', 'alice', { appId: 'jira', session, method: 'sso', ip: '192.0.2.1' }),
    ],
    [
      'a failed code',
      ev('twofold.2fa.failed', 'alice', { appId: 'jira', session, ip: '192.0.2.1', reason: 'bad_code' }),
    ],
    ['another admin action', ev('twofold.admin.policy_changed', 'root', {})],
  ])('ignores %s', (_name, event) => {
    expect(sessionChangeOf(event)).toBeUndefined();
  });
});

describe('announcementsOf', () => {
  const validate = {
    kind: 'validate',
    session,
    username: 'alice',
    appId: 'jira',
    at,
    eventId: 'v1',
  } as const;
  const logout = { kind: 'revoke', session, reason: 'logout', at: at - 5, eventId: 'l1' } as const;
  const outcome = (o: Partial<SessionOutcome>): SessionOutcome => ({
    change: validate,
    session,
    username: 'alice',
    outcome: 'applied',
    announce: true,
    expiresAtMs: at + 3_600_000,
    version: at,
    ...o,
  });

  it('builds contract-valid events with stable ids, skipping the unannounced and doubles', () => {
    const events = announcementsOf([
      outcome({}),
      outcome({ outcome: 'duplicate' }),
      outcome({ change: logout, announce: false, outcome: 'stale' }),
      outcome({ change: logout, expiresAtMs: at + 7_200_000 }),
    ]);
    expect(events.map((e) => e.type)).toEqual(['twofold.session.validated', 'twofold.session.revoked']);
    for (const e of events) expect(validateEvent(e, 'session').ok).toBe(true);
    expect(events[0]!.id).toBe(announcementId('v1', session, 'validated'));
    expect(events[0]!.data).toEqual({
      session,
      username: 'alice',
      appId: 'jira',
      verifiedAt: time,
      expiresAt: new Date(at + 3_600_000).toISOString(),
    });
    // The logout's clock was behind, but the revocation is stamped no earlier than the validation.
    expect(events[1]!.time).toBe(time);
    expect(events[1]!.data).toMatchObject({ session, reason: 'logout' });
  });

  it('derives UUID-shaped ids that differ per cause, session and kind', () => {
    const id = announcementId('v1', session, 'validated');
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(
      new Set([
        id,
        announcementId('v2', session, 'validated'),
        announcementId('v1', 'cd'.repeat(32), 'validated'),
        announcementId('v1', session, 'revoked'),
      ]).size,
    ).toBe(4);
  });
});
