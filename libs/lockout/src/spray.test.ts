import { describe, expect, it } from 'vitest';
import { DEFAULT_LOCKOUT_RULES } from './rules.js';
import { assessSpray, type SprayWindow } from './spray.js';

const rules = DEFAULT_LOCKOUT_RULES.spray; // 300 failures, 100 users, 20 IPs, ≤ 3 per pair, 3× baseline
const spray: SprayWindow = {
  failures: 300,
  distinctUsers: 100,
  distinctIps: 20,
  distinctPairs: 100,
  baselineFailures: 100,
};

describe('assessSpray', () => {
  it.each([
    ['every threshold met exactly', {}, true],
    ['one failure short', { failures: 299 }, false],
    ['one user short', { distinctUsers: 99 }, false],
    ['one IP short', { distinctIps: 19 }, false],
    ['not thin: 3.01 failures per pair', { distinctPairs: 99.6 }, false],
    ['below 3× the baseline', { baselineFailures: 100.5 }, false],
    ['no baseline yet', { baselineFailures: 0 }, true],
    ['one source hammering one account', { distinctIps: 1, distinctUsers: 1, distinctPairs: 1 }, false],
    ['credential stuffing from one IP', { distinctIps: 1, distinctUsers: 300, distinctPairs: 300 }, false],
    [
      'botnet: 200 IPs × 500 users × 1',
      { failures: 100_000, distinctUsers: 500, distinctIps: 200, distinctPairs: 100_000 },
      true,
    ],
  ] as const)('%s → %s', (_name, over, detected) => {
    expect(assessSpray(rules, { ...spray, ...over }).detected).toBe(detected);
  });

  it('carries the evidence', () => {
    expect(assessSpray(rules, spray).evidence).toEqual({
      windowSeconds: 600,
      failures: 300,
      distinctUsers: 100,
      distinctIps: 20,
      distinctPairs: 100,
      failuresPerPair: 3,
      baselineFailuresPerWindow: 100,
      riseOverBaseline: 3,
    });
  });
});
