import { describe, expect, it } from 'vitest';
import { classifyCode } from './code-verifier.js';
import { createEnrollmentCache } from './enrollment-cache.js';
import { VerificationError } from './errors.js';

const entry = (version: string, readAt: number) => ({
  version,
  key: new Uint8Array(20),
  params: { algorithm: 'SHA1', digits: 6, period: 30 } as const,
  readAt,
});

describe('createEnrollmentCache', () => {
  it('keeps at most maxEntries, dropping the oldest first', () => {
    const cache = createEnrollmentCache({ maxEntries: 2, maxAgeMs: 60_000 });
    cache.set('a', entry('1', 0));
    cache.set('b', entry('1', 0));
    cache.set('a', entry('2', 0)); // replaced: now the newest
    cache.set('c', entry('1', 0));
    expect(cache.size).toBe(2);
    expect(cache.get('b', 0)).toBeUndefined();
    expect(cache.get('a', 0)?.version).toBe('2');
    expect(cache.get('c', 0)?.version).toBe('1');
  });

  it('forgets a copy older than maxAgeMs, whatever its version', () => {
    const cache = createEnrollmentCache({ maxEntries: 10, maxAgeMs: 1_000 });
    cache.set('a', entry('1', 5_000));
    expect(cache.get('a', 6_000)).toBeDefined();
    expect(cache.get('a', 6_001)).toBeUndefined();
    expect(cache.size).toBe(0);
  });

  it('keeps nothing when turned off (0 entries), and forgets on delete', () => {
    const off = createEnrollmentCache({ maxEntries: 0, maxAgeMs: 1_000 });
    off.set('a', entry('1', 0));
    expect(off.get('a', 0)).toBeUndefined();
    const on = createEnrollmentCache({ maxEntries: 1, maxAgeMs: 1_000 });
    on.set('a', entry('1', 0));
    on.delete('a');
    expect(on.get('a', 0)).toBeUndefined();
  });
});

describe('classifyCode', () => {
  it.each([
    ['123456', { kind: 'totp', digits: '123456' }],
    ['123 456', { kind: 'totp', digits: '123456' }],
    ['12345678', { kind: 'totp', digits: '12345678' }],
  ])('reads %s as a TOTP code', (raw, expected) => {
    expect(classifyCode(raw)).toEqual(expected);
  });

  it.each([
    ['38472-61950', { kind: 'backup_code', code: '3847261950' }],
    ['3847261950', { kind: 'backup_code', code: '3847261950' }],
    ['38472 61950', { kind: 'backup_code', code: '3847261950' }],
    ['abcde-fghjk', { kind: 'backup_code', code: 'abcdefghjk' }],
  ])('reads %s as a backup code, also when it is all digits', (raw, expected) => {
    expect(classifyCode(raw)).toEqual(expected);
  });

  it.each(['12345', '1234567', '123456789', '12345678901', 'abcdef', 42])(
    'refuses %s as malformed',
    (raw) => {
      expect(() => classifyCode(raw)).toThrow(VerificationError);
    },
  );
});
