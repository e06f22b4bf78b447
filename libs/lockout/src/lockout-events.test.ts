import { describe, expect, it } from 'vitest';
import { validateEvent } from '@twofold/contracts';
import {
  attackDetectedEvent,
  deterministicEventId,
  lockoutImposedEvent,
  lockoutLiftedEvent,
  lockoutSubject,
  parseUserIpKey,
  type LockoutFacts,
} from './lockout-events.js';

const lock: LockoutFacts = {
  lockId: 'a1',
  scope: 'user_ip',
  key: 'Alice@Example.com|2001:db8::1',
  mode: 'deny',
  rule: 'user_ip_backoff',
  until: '2026-11-28T09:01:00.000Z',
  failures: 5,
  level: 1,
};
const time = new Date('2026-11-28T09:00:00.000Z');

describe('security events', () => {
  it('are valid events of the security topic, with stable ids', () => {
    const imposed = lockoutImposedEvent(lock, { time });
    expect(validateEvent(imposed, 'security')).toMatchObject({ ok: true });
    expect(imposed.id).toBe(lockoutImposedEvent(lock, { time: new Date() }).id);
    expect(imposed.subject).toBe('alice@example.com');
    expect(imposed.data).toMatchObject({ scope: 'user_ip', until: lock.until, mode: 'deny', lockId: 'a1' });
    const widened = lockoutImposedEvent({ ...lock, rule: 'x' }, { time, widened: true });
    expect(widened.id).not.toBe(imposed.id);
    const lifted = lockoutLiftedEvent(lock, 'expiry', { time });
    expect(validateEvent(lifted, 'security')).toMatchObject({ ok: true });
    // One lifted id per lockout, whoever lifts it.
    expect(lockoutLiftedEvent(lock, 'admin', { time }).id).toBe(lifted.id);
    const attack = attackDetectedEvent(
      'credential_stuffing',
      '203.0.113.0/24',
      { distinctUsers: 50 },
      { time, idParts: ['a1'] },
    );
    expect(validateEvent(attack, 'security')).toMatchObject({ ok: true });
    expect(validateEvent(lockoutImposedEvent({ ...lock, until: null }, { time }), 'security')).toMatchObject({
      ok: true,
    });
  });

  it('derives UUIDv8 ids', () => {
    expect(deterministicEventId('a', 'b')).toMatch(
      /^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
    );
    expect(deterministicEventId('a', 'b')).not.toBe(deterministicEventId('ab'));
  });

  it.each([
    ['alice|203.0.113.7', { username: 'alice', ip: '203.0.113.7' }],
    ['a|b|c|2001:db8::1', { username: 'a|b|c', ip: '2001:db8::1' }],
    ['alice', undefined],
    ['|203.0.113.7', undefined],
    ['alice|', undefined],
  ])('parseUserIpKey(%j)', (key, parsed) => {
    expect(parseUserIpKey(key)).toEqual(parsed);
  });

  it('keys events by user for user scopes and by source for ip scope', () => {
    expect(lockoutSubject('user', 'alice')).toBe('alice');
    expect(lockoutSubject('user_ip', 'alice|203.0.113.7')).toBe('alice');
    expect(lockoutSubject('ip', '203.0.113.0/24')).toBe('203.0.113.0/24');
  });
});
