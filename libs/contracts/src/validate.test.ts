import { describe, expect, it } from 'vitest';
import {
  MAX_EVENT_BYTES,
  createEvent,
  hashSessionToken,
  normalizeUsername,
  parseEvent,
  validateEvent,
} from './index.js';

const session = hashSessionToken('crowd-token');
const login = () =>
  createEvent('twofold.login.succeeded', 'app/jira', 'Alice', {
    appId: 'jira',
    session,
    method: 'password',
    ip: '192.0.2.1',
  });
const bytes = (value: unknown) => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value));

describe('names', () => {
  it('normalizes usernames with NFKC, trim and lower case', () => {
    expect(normalizeUsername(' ALICE ')).toBe('alice');
    expect(normalizeUsername('ａｌｉｃｅ')).toBe('alice'); // full-width letters
  });
  it('hashes SSO tokens to lowercase hex SHA-256', () => {
    expect(hashSessionToken('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  });
});

describe('parseEvent', () => {
  it('accepts a valid event and normalizes its subject', () => {
    const result = parseEvent(bytes({ ...login(), subject: ' Alice ' }), 'login');
    expect(result).toMatchObject({ ok: true, event: { subject: 'alice', type: 'twofold.login.succeeded' } });
  });

  it.each([
    ['empty message', null, 'message has no value'],
    ['not JSON', '{nope', /^not JSON/],
    ['a JSON array', '[]', 'event must be a JSON object'],
    ['a missing id', { ...login(), id: undefined }, 'event.id is required'],
    ['a wrong specversion', { ...login(), specversion: '0.3' }, 'event.specversion must be "1.0"'],
    ['an unknown type', { ...login(), type: 'twofold.nope' }, 'unknown event type twofold.nope'],
    [
      'a type of another topic',
      { ...login(), type: 'twofold.session.revoked' },
      /does not belong on the login topic/,
    ],
    [
      'a bad ip',
      { ...login(), data: { ...login().data, ip: '999.1.1.1' } },
      'data.ip must match format "ip"',
    ],
    ['a missing ip', { ...login(), data: { ...login().data, ip: undefined } }, 'data.ip is required'],
    [
      'a raw token as session',
      { ...login(), data: { ...login().data, session: 'token' } },
      /data\.session must match pattern/,
    ],
    [
      'a bad method',
      { ...login(), data: { ...login().data, method: 'magic' } },
      'data.method must be one of "password", "sso", "remember_me", "api_token"',
    ],
    ['a bad time', { ...login(), time: 'yesterday' }, 'event.time must match format "date-time"'],
    ['a time in year 0', { ...login(), time: '0000-01-01T00:00:00Z' }, /outside the years 0001-9999/],
    ['a time in year 0 once in UTC', { ...login(), time: '0001-01-01T00:30:00+01:00' }, /outside the years/],
    ['a time past 9999 once in UTC', { ...login(), time: '9999-12-31T23:30:00-01:00' }, /outside the years/],
    ['a blank subject', { ...login(), subject: '   ' }, 'event.subject is empty once normalized'],
    [
      'a NUL in the subject',
      { ...login(), subject: 'ali\u0000ce' },
      'event.subject contains the control character U+0000',
    ],
    [
      'a newline in the subject',
      { ...login(), subject: 'alice\nbob' },
      'event.subject contains the control character U+000A',
    ],
  ])('refuses %s with a reason', (_name, value, reason) => {
    const result = parseEvent(value === null ? null : bytes(value), 'login');
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.reason).toMatch(reason);
  });

  it('refuses events over 64 KiB before parsing them', () => {
    const big = { ...login(), data: { ...login().data, userAgent: 'x'.repeat(MAX_EVENT_BYTES) } };
    const result = parseEvent(bytes(big), 'login');
    expect(result).toEqual({ ok: false, reason: expect.stringMatching(/the limit is 65536/) });
  });

  it('accepts any twofold.admin.* type on the admin topic only', () => {
    const admin = createEvent('twofold.admin.unlock', 'service/api', 'admin', {
      scope: 'user',
      key: 'alice',
    });
    expect(validateEvent(admin, 'admin').ok).toBe(true);
    expect(validateEvent(admin, 'login').ok).toBe(false);
  });
});
