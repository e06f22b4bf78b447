import { describe, expect, it } from 'vitest';
import { createEvent, hashSessionToken, type AnyTwofoldEvent } from '@twofold/contracts';
import { DEFAULT_LOCKOUT_RULES } from '@twofold/lockout';
import { lockoutSignalOf } from './lockout-signal.js';

const NOW = Date.UTC(2026, 10, 28, 12, 0, 0);
const session = hashSessionToken('token');
const at = new Date(NOW - 1000);
const signal = (event: unknown, broker = NOW) =>
  lockoutSignalOf(event as AnyTwofoldEvent, broker, NOW, DEFAULT_LOCKOUT_RULES);

describe('lockoutSignalOf', () => {
  it('reads a failed login as a failure of the user, from the canonical IP and its network', () => {
    const event = createEvent(
      'twofold.login.failed',
      'app/jira',
      'Alice',
      { appId: 'jira', ip: '2001:DB8::0:7', reason: 'bad_password' },
      { time: at },
    );
    expect(signal(event)).toEqual({
      kind: 'failure',
      id: event.id,
      username: 'alice',
      ip: '2001:db8::7',
      network: '2001:db8::/64',
      at: NOW - 1000,
      adjusted: 'none',
      topic: 'login',
      unknownUser: false,
    });
  });

  it.each([
    ['unknown_user', true],
    ['bad_password', false],
    ['disabled', false],
  ] as const)('marks a failed login (%s) as for an unknown user: %s', (reason, unknownUser) => {
    const event = createEvent('twofold.login.failed', 'app/jira', 'alice', {
      appId: 'jira',
      ip: '192.0.2.1',
      reason,
    });
    expect(signal(event)).toMatchObject({ kind: 'failure', unknownUser });
  });

  it('never marks a failed code as for an unknown user', () => {
    const event = createEvent('twofold.2fa.failed', 'service/api', 'alice', {
      appId: 'jira',
      session,
      ip: '192.0.2.1',
      reason: 'bad_code',
    });
    expect(signal(event)).toMatchObject({ kind: 'failure', unknownUser: false });
  });

  it.each([
    ['bad_code', 'failure'],
    ['replayed', 'failure'],
    ['expired', 'ignored'],
    ['locked', 'ignored'],
  ] as const)('reads a failed code (%s) as %s', (reason, kind) => {
    const event = createEvent('twofold.2fa.failed', 'service/api', 'alice', {
      appId: 'jira',
      session,
      ip: '192.0.2.1',
      reason,
    });
    expect(signal(event).kind).toBe(kind);
  });

  it('counts an absurd time at the broker time', () => {
    const event = createEvent(
      'twofold.login.failed',
      'app/jira',
      'alice',
      { appId: 'jira', ip: '192.0.2.1', reason: 'unknown_user' },
      { time: '2099-01-01T00:00:00.000Z' },
    );
    expect(signal(event, NOW - 50)).toMatchObject({ at: NOW - 50, adjusted: 'future' });
  });

  it.each([
    ['twofold.2fa.verified', { appId: 'jira', session, method: 'totp' }, 'complete'],
    [
      'twofold.2fa.decided',
      { loginEventId: 'x', appId: 'jira', session, decision: 'skip', reason: 'sso' },
      'complete',
    ],
    [
      'twofold.2fa.decided',
      {
        loginEventId: 'x',
        appId: 'jira',
        session,
        decision: 'challenge',
        reason: 'policy_required',
        challengeId: 'c',
      },
      'ignored',
    ],
    [
      'twofold.2fa.decided',
      { loginEventId: 'x', appId: 'jira', session, decision: 'enroll', reason: 'not_enrolled' },
      'reset',
    ],
    [
      'twofold.2fa.decided',
      { loginEventId: 'x', appId: 'jira', session, decision: 'deny', reason: 'locked', lockedUntil: null },
      'ignored',
    ],
    ['twofold.enrollment.activated', { method: 'generated' }, 'ignored'],
    ['twofold.login.succeeded', { appId: 'jira', session, method: 'password', ip: '192.0.2.1' }, 'login'],
    ['twofold.logout', { appId: 'jira', session }, 'ignored'],
  ] as const)('reads %s (%j) as %s', (type, data, kind) => {
    expect(signal(createEvent(type, 'app/jira', 'alice', data as never)).kind).toBe(kind);
  });

  it('reads a decided `enroll` as a streak reset of the user, at the event time', () => {
    const event = createEvent(
      'twofold.2fa.decided',
      'service/verifier',
      'Alice',
      { loginEventId: 'x', appId: 'jira', session, decision: 'enroll', reason: 'not_enrolled' },
      { time: at },
    );
    expect(signal(event)).toEqual({ kind: 'reset', id: event.id, username: 'alice', at: NOW - 1000 });
  });

  it('refuses an address lockout state cannot key', () => {
    const event = createEvent('twofold.login.failed', 'app/jira', 'alice', {
      appId: 'jira',
      ip: 'nope',
      reason: 'bad_password',
    });
    expect(signal(event)).toEqual({ kind: 'rejected', reason: 'data.ip "nope" is not a usable IP address' });
  });
});
