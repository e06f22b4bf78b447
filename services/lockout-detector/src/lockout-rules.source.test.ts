import { afterEach, describe, expect, it, vi } from 'vitest';
import { DEFAULT_LOCKOUT_RULES, resolveLockoutRules } from '@twofold/lockout';
import { createLogger } from '@twofold/telemetry';
import { createLockoutRulesSource, type LockoutPolicyReader } from './lockout-rules.source.js';

const logger = createLogger({ service: 'test', level: 'silent' });

/** A policy held in memory: `set` changes it and moves the version, as the trigger does. */
function policyOf(lockout: unknown) {
  let version = 1;
  let current = lockout;
  let loads = 0;
  let down = false;
  let hang = false;
  const reader: LockoutPolicyReader = {
    version: async () => {
      if (hang) return new Promise<string>(() => undefined);
      if (down) throw new Error('postgres down');
      return String(version);
    },
    load: async () => {
      if (down) throw new Error('postgres down');
      loads++;
      return { version: String(version), settings: { lockout: current } };
    },
  };
  return {
    reader,
    set(next: unknown) {
      current = next;
      version++;
    },
    down(value: boolean) {
      down = value;
    },
    /** A connection gone silent: the version check never answers. */
    hang(value: boolean) {
      hang = value;
    },
    loads: () => loads,
  };
}

describe('createLockoutRulesSource', () => {
  const base = resolveLockoutRules({ userIp: { failures: 7 } });
  afterEach(() => vi.useRealTimers());

  it('gives a hung check up at its deadline, so a later one applies a change once Postgres answers', async () => {
    vi.useFakeTimers();
    const policy = policyOf({});
    const source = createLockoutRulesSource({ base, policy: policy.reader, logger, refreshMs: 500 });
    await source.start();
    policy.hang(true);
    await vi.advanceTimersByTimeAsync(500);
    policy.hang(false);
    policy.set({ userIp: { failures: 3 } });
    await vi.advanceTimersByTimeAsync(1_000);
    expect(source.current().userIp.failures).toBe(7); // still waiting on the hung check
    await vi.advanceTimersByTimeAsync(5_000);
    expect(source.current().userIp.failures).toBe(3);
    await source.stop();
  });

  it('applies the policy entry over the env rules, and reloads only when the version moves', async () => {
    const policy = policyOf({ source: { ipDistinctUsers: 30 } });
    const source = createLockoutRulesSource({ base, policy: policy.reader, logger });
    await source.start();
    await source.stop();
    expect(source.current().userIp.failures).toBe(7);
    expect(source.current().source.ipDistinctUsers).toBe(30);
    await source.refresh();
    expect(policy.loads()).toBe(1);
    policy.set({ userIp: { failures: 3 } });
    await source.refresh();
    expect(policy.loads()).toBe(2);
    expect(source.current().userIp.failures).toBe(3);
    expect(source.current().source.ipDistinctUsers).toBe(DEFAULT_LOCKOUT_RULES.source.ipDistinctUsers);
  });

  it('keeps the last good rules when the entry does not make sense or the policy cannot be read', async () => {
    const policy = policyOf({ userIp: { failures: 4 } });
    const source = createLockoutRulesSource({ base, policy: policy.reader, logger });
    await source.refresh();
    expect(source.current().userIp.failures).toBe(4);
    policy.set({ userIp: { failures: 0 } });
    await source.refresh();
    expect(source.current().userIp.failures).toBe(4);
    policy.down(true);
    await source.refresh();
    expect(source.current().userIp.failures).toBe(4);
    policy.down(false);
    policy.set({ userIp: { failures: 9 } });
    await source.refresh();
    expect(source.current().userIp.failures).toBe(9);
  });

  it('runs on the env rules without a policy, and when the policy is down at start', async () => {
    expect(createLockoutRulesSource({ base, logger }).current()).toBe(base);
    const policy = policyOf({ userIp: { failures: 2 } });
    policy.down(true);
    const source = createLockoutRulesSource({ base, policy: policy.reader, logger });
    await source.refresh();
    expect(source.current()).toBe(base);
  });
});
