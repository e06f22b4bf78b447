/**
 * The lockout detector's thresholds. Every number is adjustable: defaults below, overridden
 * by a deep-partial object (the `lockout` entry of the admin policy, or `LOCKOUT_RULES`).
 *
 * Grounding of the defaults:
 * - NIST SP 800-63B §5.2.2: at most 100 consecutive failed attempts on one account, the
 *   counter reset by a successful authentication → `hardLock.consecutiveFailures = 100`.
 * - NIST SP 800-63B §5.2.2 also asks to prefer measures that do not hand an attacker a
 *   denial of service (CAPTCHA, waiting periods, allowlisted networks) → the (user, IP)
 *   backoff, "force a second factor" instead of a lock, known-good networks.
 * - OWASP Authentication Cheat Sheet ("Account Lockout"): a threshold, an observation
 *   window and a lockout duration, with an exponential lockout → `userIp` (5 failures in
 *   15 minutes, then 1 minute doubling to an hour).
 * - OWASP Credential Stuffing Prevention Cheat Sheet: one source trying many accounts is
 *   the signature of stuffing; block the source, not the accounts → `source`.
 * - OWASP ASVS v4 2.2.1: no more than 100 failed attempts per hour on one account.
 */
export interface LockoutRules {
  /** (user, IP) progressive backoff: `failures` within `windowSeconds` lock the pair; the wait doubles. */
  readonly userIp: {
    readonly failures: number;
    readonly windowSeconds: number;
    readonly lockSeconds: number;
    readonly maxLockSeconds: number;
    /** How long the doubling is remembered after the last lock of the pair. */
    readonly levelMemorySeconds: number;
  };
  /** Credential stuffing: one IP, or one network (IPv4 /24, IPv6 /64), failing against many users. */
  readonly source: {
    readonly ipDistinctUsers: number;
    readonly networkDistinctUsers: number;
    readonly windowSeconds: number;
    readonly blockSeconds: number;
    readonly maxBlockSeconds: number;
    readonly levelMemorySeconds: number;
  };
  /** A user failing from many sources: the second factor is forced (no skips), sessions revoked. */
  readonly user: {
    readonly distinctSources: number;
    readonly windowSeconds: number;
    readonly forceSecondFactorSeconds: number;
  };
  /** The NIST bound: a hard user lock after this many consecutive failures (reset by a success). */
  readonly hardLock: {
    readonly consecutiveFailures: number;
    readonly lockSeconds: number;
    readonly maxLockSeconds: number;
    readonly levelMemorySeconds: number;
    /**
     * The lock spares the user's known-good networks unless at least this many failures of
     * the streak came from them (an attacker elsewhere cannot lock the user out at home).
     */
    readonly knownNetworkFailures: number;
    /** A streak with no new failure for this long is forgotten. */
    readonly streakMemorySeconds: number;
  };
  /** Networks the user completed a sign-in from (second factor verified, or skipped by policy). */
  readonly knownNetworks: {
    readonly ttlSeconds: number;
    readonly max: number;
    /** How long a primary login waits for its second factor to mark its network as known. */
    readonly pendingSeconds: number;
  };
  /** Password spraying: failures spread thin over many users and IPs, well above the baseline. */
  readonly spray: {
    readonly windowSeconds: number;
    readonly minFailures: number;
    readonly minUsers: number;
    readonly minIps: number;
    /** Failures per distinct (user, IP) pair at most this: thin, not a brute force. */
    readonly maxFailuresPerPair: number;
    /** Failures in the window at least this multiple of the average window of the baseline. */
    readonly riseFactor: number;
    /** Windows before the current one that form the baseline. */
    readonly baselineWindows: number;
    readonly cooldownSeconds: number;
    readonly evaluateEverySeconds: number;
  };
  /** Optional permanent lockout: the N-th lock of one key within its level memory has no end. 0 = off. */
  readonly permanent: { readonly afterLocks: number };
  /** Absurd event times are replaced by the broker's time (see effectiveEventTime). */
  readonly clock: { readonly maxFutureSeconds: number; readonly maxPastSeconds: number };
}

const MINUTE = 60;
const HOUR = 3600;
const DAY = 86_400;

export const DEFAULT_LOCKOUT_RULES: LockoutRules = deepFreeze({
  userIp: {
    failures: 5,
    windowSeconds: 15 * MINUTE,
    lockSeconds: MINUTE,
    maxLockSeconds: HOUR,
    levelMemorySeconds: DAY,
  },
  source: {
    ipDistinctUsers: 20,
    networkDistinctUsers: 50,
    windowSeconds: 10 * MINUTE,
    blockSeconds: 15 * MINUTE,
    maxBlockSeconds: DAY,
    levelMemorySeconds: DAY,
  },
  user: { distinctSources: 10, windowSeconds: HOUR, forceSecondFactorSeconds: DAY },
  hardLock: {
    consecutiveFailures: 100,
    lockSeconds: HOUR,
    maxLockSeconds: DAY,
    levelMemorySeconds: 7 * DAY,
    knownNetworkFailures: 10,
    streakMemorySeconds: 30 * DAY,
  },
  knownNetworks: { ttlSeconds: 90 * DAY, max: 20, pendingSeconds: HOUR },
  spray: {
    windowSeconds: 10 * MINUTE,
    minFailures: 300,
    minUsers: 100,
    minIps: 20,
    maxFailuresPerPair: 3,
    riseFactor: 3,
    baselineWindows: 24,
    cooldownSeconds: 10 * MINUTE,
    evaluateEverySeconds: 1,
  },
  permanent: { afterLocks: 0 },
  clock: { maxFutureSeconds: 5 * MINUTE, maxPastSeconds: DAY },
});

/** Leaves that are not "an integer of at least 1". */
const LEAF_LIMITS: Record<string, { min: number; integer: boolean }> = {
  'permanent.afterLocks': { min: 0, integer: true },
  'spray.riseFactor': { min: 0, integer: false },
  'spray.maxFailuresPerPair': { min: 1, integer: false },
  'spray.evaluateEverySeconds': { min: 0.05, integer: false },
};

/** Thresholds that do not make sense, named by their path. */
export class LockoutRulesError extends Error {
  readonly code = 'TWOFOLD_LOCKOUT_RULES_INVALID';
  constructor(readonly problems: readonly string[]) {
    super(`invalid lockout rules: ${problems.join('; ')}`);
    this.name = 'LockoutRulesError';
  }
}

export type LockoutRulesOverride = { readonly [K in keyof LockoutRules]?: Partial<LockoutRules[K]> };

/**
 * The defaults with `overrides` applied (a deep-partial object, e.g. the admin policy's
 * `lockout` entry). Unknown keys and values that are not sensible numbers are refused with
 * a {@link LockoutRulesError} naming each, so a typo never silently keeps a default.
 */
export function resolveLockoutRules(
  overrides: unknown = {},
  base: LockoutRules = DEFAULT_LOCKOUT_RULES,
): LockoutRules {
  if (overrides === undefined || overrides === null) return base;
  const problems: string[] = [];
  if (typeof overrides !== 'object' || Array.isArray(overrides)) {
    throw new LockoutRulesError(['rules must be an object']);
  }
  const merged: Record<string, Record<string, number>> = {};
  for (const [group, values] of Object.entries(base))
    merged[group] = { ...(values as Record<string, number>) };
  for (const [group, values] of Object.entries(overrides as Record<string, unknown>)) {
    const target = merged[group];
    if (!target) {
      problems.push(`unknown group "${group}" (known: ${Object.keys(base).join(', ')})`);
      continue;
    }
    if (typeof values !== 'object' || values === null || Array.isArray(values)) {
      problems.push(`${group} must be an object`);
      continue;
    }
    for (const [name, value] of Object.entries(values as Record<string, unknown>)) {
      const path = `${group}.${name}`;
      if (!(name in target)) {
        problems.push(`unknown rule "${path}" (known: ${Object.keys(target).join(', ')})`);
        continue;
      }
      const limit = LEAF_LIMITS[path] ?? { min: 1, integer: true };
      if (typeof value !== 'number' || !Number.isFinite(value)) {
        problems.push(`${path} must be a number`);
      } else if (limit.integer && !Number.isInteger(value)) {
        problems.push(`${path} must be an integer`);
      } else if (value < limit.min) {
        problems.push(`${path} must be at least ${limit.min}`);
      } else {
        target[name] = value;
      }
    }
  }
  const rules = merged as unknown as LockoutRules;
  if (problems.length === 0) {
    const pairs: [string, number, string, number][] = [
      ['userIp.maxLockSeconds', rules.userIp.maxLockSeconds, 'userIp.lockSeconds', rules.userIp.lockSeconds],
      [
        'source.maxBlockSeconds',
        rules.source.maxBlockSeconds,
        'source.blockSeconds',
        rules.source.blockSeconds,
      ],
      [
        'hardLock.maxLockSeconds',
        rules.hardLock.maxLockSeconds,
        'hardLock.lockSeconds',
        rules.hardLock.lockSeconds,
      ],
    ];
    for (const [maxName, max, minName, min] of pairs) {
      if (max < min) problems.push(`${maxName} (${max}) must be at least ${minName} (${min})`);
    }
    if (rules.hardLock.consecutiveFailures > 100) {
      problems.push('hardLock.consecutiveFailures must be at most 100 (NIST SP 800-63B §5.2.2)');
    }
  }
  if (problems.length > 0) throw new LockoutRulesError(problems);
  return deepFreeze(rules);
}

/** Rules from a JSON text (the `LOCKOUT_RULES` variable); empty text means the defaults. */
export function parseLockoutRules(json: string, base: LockoutRules = DEFAULT_LOCKOUT_RULES): LockoutRules {
  if (json.trim() === '') return base;
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch (err) {
    throw new LockoutRulesError([`not JSON: ${(err as Error).message}`]);
  }
  return resolveLockoutRules(parsed, base);
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}
