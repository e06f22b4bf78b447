import { describe, expect, it } from 'vitest';
import { DEFAULT_LOCKOUT_RULES, LockoutRulesError, parseLockoutRules, resolveLockoutRules } from './rules.js';

describe('resolveLockoutRules', () => {
  it('keeps the defaults grounded in NIST SP 800-63B and OWASP', () => {
    const rules = resolveLockoutRules({});
    expect(rules).toEqual(DEFAULT_LOCKOUT_RULES);
    expect(rules.hardLock.consecutiveFailures).toBe(100);
    expect(rules.userIp).toMatchObject({ failures: 5, windowSeconds: 900 });
    expect(rules.permanent.afterLocks).toBe(0);
    expect(Object.isFrozen(rules.userIp)).toBe(true);
  });

  it('overrides single leaves and keeps the rest', () => {
    const rules = resolveLockoutRules({ userIp: { failures: 10 }, spray: { riseFactor: 2.5 } });
    expect(rules.userIp).toEqual({ ...DEFAULT_LOCKOUT_RULES.userIp, failures: 10 });
    expect(rules.spray.riseFactor).toBe(2.5);
    expect(rules.source).toEqual(DEFAULT_LOCKOUT_RULES.source);
  });

  it.each([
    [{ userIP: { failures: 3 } }, 'unknown group "userIP"'],
    [{ userIp: { failure: 3 } }, 'unknown rule "userIp.failure"'],
    [{ userIp: { failures: '3' } }, 'userIp.failures must be a number'],
    [{ userIp: { failures: 2.5 } }, 'userIp.failures must be an integer'],
    [{ userIp: { failures: 0 } }, 'userIp.failures must be at least 1'],
    [
      { userIp: { lockSeconds: 600, maxLockSeconds: 60 } },
      'userIp.maxLockSeconds (60) must be at least userIp.lockSeconds (600)',
    ],
    [{ hardLock: { consecutiveFailures: 101 } }, 'hardLock.consecutiveFailures must be at most 100'],
    [{ permanent: { afterLocks: -1 } }, 'permanent.afterLocks must be at least 0'],
    [{ userIp: 5 }, 'userIp must be an object'],
  ])('refuses %j', (override, problem) => {
    expect(() => resolveLockoutRules(override)).toThrow(LockoutRulesError);
    try {
      resolveLockoutRules(override);
    } catch (err) {
      expect((err as LockoutRulesError).problems.join('; ')).toContain(problem);
    }
  });

  it('names every problem at once', () => {
    try {
      resolveLockoutRules({ userIp: { failures: 0, nope: 1 }, nope: {} });
      expect.unreachable();
    } catch (err) {
      expect((err as LockoutRulesError).problems).toHaveLength(3);
    }
  });

  it('accepts permanent lockout after N (off by default)', () => {
    expect(resolveLockoutRules({ permanent: { afterLocks: 3 } }).permanent.afterLocks).toBe(3);
  });
});

describe('parseLockoutRules', () => {
  it('reads JSON; empty means defaults', () => {
    expect(parseLockoutRules('')).toBe(DEFAULT_LOCKOUT_RULES);
    expect(parseLockoutRules('{"user":{"distinctSources":4}}').user.distinctSources).toBe(4);
  });
  it('refuses text that is not JSON', () => {
    expect(() => parseLockoutRules('{user:')).toThrow(/not JSON/);
  });
});
