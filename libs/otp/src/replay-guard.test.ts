import { describe, expect, it } from 'vitest';
import { REPLAY_GUARD_SCRIPT, isStepAfter, replayGuardTtlSeconds } from './replay-guard.js';

describe('isStepAfter', () => {
  it.each([
    [null, 0, true, 'nothing accepted yet'],
    [null, 59_000_000, true, 'nothing accepted yet, any step'],
    [100, 101, true, 'the next step'],
    [100, 150, true, 'a much later step'],
    [100, 100, false, 'the same step: a replayed code'],
    [100, 99, false, 'an older step still inside the window'],
    [0, 0, false, 'step zero twice'],
  ] as [number | null, number, boolean, string][])('last %s, step %i → %s (%s)', (last, step, accepted) => {
    expect(isStepAfter(last, step)).toBe(accepted);
  });
});

describe('REPLAY_GUARD_SCRIPT', () => {
  it('reads one key and two arguments, and sets with an expiry', () => {
    expect(REPLAY_GUARD_SCRIPT).toContain("redis.call('GET', KEYS[1])");
    expect(REPLAY_GUARD_SCRIPT).toContain("redis.call('SET', KEYS[1], ARGV[1], 'EX'");
    expect(REPLAY_GUARD_SCRIPT).not.toMatch(/KEYS\[2\]|ARGV\[3\]/);
  });
});

describe('replayGuardTtlSeconds', () => {
  it('outlives every step a code can still be accepted in', () => {
    expect(replayGuardTtlSeconds()).toBe(120);
    expect(replayGuardTtlSeconds(30, 2)).toBe(180);
    expect(replayGuardTtlSeconds(60, 0)).toBe(120);
  });
});
