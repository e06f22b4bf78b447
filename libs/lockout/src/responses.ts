import type { LockoutRules } from './rules.js';

/** The `rule` of each `lockout.imposed` the detector publishes. */
export const LOCKOUT_RULE = {
  /** (user, IP): too many failures in the window; the wait doubles each time. */
  userIpBackoff: 'user_ip_backoff',
  /** user: failures from many sources; the second factor is forced, no hard lock. */
  manySources: 'many_sources',
  /** user: the NIST bound of consecutive failures; spares the user's known-good networks. */
  consecutiveFailures: 'consecutive_failures',
  /** user: the NIST bound reached with failures from the user's own networks too; covers every network. */
  consecutiveFailuresKnownNetworks: 'consecutive_failures_known_networks',
  /** IP: failures against many users (credential stuffing). */
  credentialStuffingIp: 'credential_stuffing_ip',
  /** network (IPv4 /24, IPv6 /64): failures against many users. */
  credentialStuffingNetwork: 'credential_stuffing_network',
} as const;
export type LockoutRuleName = (typeof LOCKOUT_RULE)[keyof typeof LOCKOUT_RULE];

/** What the windows say right after one failure was counted (or, for a redelivery, now). */
export interface FailureFacts {
  /** The IP's network is one the user completed a sign-in from. */
  readonly knownNetwork: boolean;
  /** Consecutive failures of the user since the last completed sign-in. */
  readonly streak: number;
  /** Of those, failures from the user's known-good networks. */
  readonly streakFromKnownNetworks: number;
  /** Failures of this (user, IP) in its window; not counted on a known-good network. */
  readonly pairFailures: number;
  /** Distinct IPs outside the user's known-good networks that failed for the user in the window. */
  readonly userSources: number;
  /** Distinct users this IP failed against in the window. */
  readonly ipUsers: number;
  /** Distinct users this IP's network failed against in the window. */
  readonly networkUsers: number;
  /** Lockouts already in force. */
  readonly existing: {
    readonly userLock: 'none' | 'spares_known_networks' | 'every_network';
    readonly forceSecondFactor: boolean;
    readonly userIpLock: boolean;
    readonly ipBlock: boolean;
    readonly networkBlock: boolean;
  };
}

/** A lockout to impose (if absent; the store makes that atomic). */
export type FailureResponse =
  | { readonly kind: 'user_ip'; readonly rule: LockoutRuleName; readonly failures: number }
  | {
      readonly kind: 'force_second_factor';
      readonly rule: LockoutRuleName;
      readonly failures: number;
      readonly evidence: Readonly<Record<string, number>>;
    }
  | {
      readonly kind: 'user';
      readonly rule: LockoutRuleName;
      readonly failures: number;
      /** The lock does not apply on the user's known-good networks. */
      readonly sparesKnownNetworks: boolean;
    }
  /** An existing user lock that spared known networks now covers every network. */
  | { readonly kind: 'user_widen'; readonly rule: LockoutRuleName; readonly failures: number }
  | {
      readonly kind: 'ip' | 'network';
      readonly rule: LockoutRuleName;
      readonly failures: number;
      readonly evidence: Readonly<Record<string, number>>;
    };

/**
 * The lockouts one failure calls for. Level-triggered: a rule whose count is at or above
 * its threshold responds whenever its lockout is not in force, so a lockout that expired
 * while the attack goes on comes back (with a doubled duration), and re-evaluating a
 * redelivered event is harmless (the lockout is there already).
 *
 * - (user, IP) backoff: `userIp.failures` in `userIp.windowSeconds`; never on one of the
 *   user's known-good networks (an attacker must not lock the user out at home).
 * - Many sources: `user.distinctSources` IPs outside the known-good networks → force the
 *   second factor (no skips) and revoke sessions, not a lock the attacker controls.
 * - NIST bound: `hardLock.consecutiveFailures` consecutive failures → user lock. It spares
 *   the user's known-good networks unless `hardLock.knownNetworkFailures` of the streak came
 *   from them; a lock that spares them is widened once that many do.
 * - Credential stuffing: an IP (network) failing against `source.ipDistinctUsers`
 *   (`source.networkDistinctUsers`) users in `source.windowSeconds` → block the source.
 */
export function decideFailureResponses(rules: LockoutRules, facts: FailureFacts): FailureResponse[] {
  const out: FailureResponse[] = [];
  const { existing } = facts;

  if (!facts.knownNetwork && !existing.userIpLock && facts.pairFailures >= rules.userIp.failures) {
    out.push({ kind: 'user_ip', rule: LOCKOUT_RULE.userIpBackoff, failures: facts.pairFailures });
  }

  if (!existing.forceSecondFactor && facts.userSources >= rules.user.distinctSources) {
    out.push({
      kind: 'force_second_factor',
      rule: LOCKOUT_RULE.manySources,
      failures: facts.streak,
      evidence: {
        distinctSources: facts.userSources,
        windowSeconds: rules.user.windowSeconds,
        consecutiveFailures: facts.streak,
      },
    });
  }

  if (facts.streak >= rules.hardLock.consecutiveFailures) {
    const fromHome = facts.streakFromKnownNetworks >= rules.hardLock.knownNetworkFailures;
    if (existing.userLock === 'none') {
      out.push({
        kind: 'user',
        rule: fromHome ? LOCKOUT_RULE.consecutiveFailuresKnownNetworks : LOCKOUT_RULE.consecutiveFailures,
        failures: facts.streak,
        sparesKnownNetworks: !fromHome,
      });
    } else if (existing.userLock === 'spares_known_networks' && fromHome) {
      out.push({
        kind: 'user_widen',
        rule: LOCKOUT_RULE.consecutiveFailuresKnownNetworks,
        failures: facts.streak,
      });
    }
  }

  if (!existing.ipBlock && facts.ipUsers >= rules.source.ipDistinctUsers) {
    out.push({
      kind: 'ip',
      rule: LOCKOUT_RULE.credentialStuffingIp,
      // A source's `failures` are the distinct users it failed against in the window.
      failures: facts.ipUsers,
      evidence: { distinctUsers: facts.ipUsers, windowSeconds: rules.source.windowSeconds },
    });
  }
  if (!existing.networkBlock && facts.networkUsers >= rules.source.networkDistinctUsers) {
    out.push({
      kind: 'network',
      rule: LOCKOUT_RULE.credentialStuffingNetwork,
      failures: facts.networkUsers,
      evidence: { distinctUsers: facts.networkUsers, windowSeconds: rules.source.windowSeconds },
    });
  }
  return out;
}

const NOTHING_IN_FORCE: FailureFacts['existing'] = {
  userLock: 'none',
  forceSecondFactor: false,
  userIpLock: false,
  ipBlock: false,
  networkBlock: false,
};

/**
 * The lockouts a redelivered failure asks for. It may have imposed or widened a lockout that
 * was never announced (a crash in between), and its counts are today's, not those it saw:
 * it asks as if nothing were in force and, when the user lock covers every network, to widen
 * it. The store answers for the lockout this very failure imposed or widened, to announce
 * again, and skips the rest.
 */
export function decideRedeliveredFailureResponses(
  rules: LockoutRules,
  facts: Omit<FailureFacts, 'existing'>,
  userLock: FailureFacts['existing']['userLock'],
): FailureResponse[] {
  const out = decideFailureResponses(rules, { ...facts, existing: NOTHING_IN_FORCE });
  if (userLock !== 'every_network') return out;
  const widen = decideFailureResponses(rules, {
    ...facts,
    existing: { ...NOTHING_IN_FORCE, userLock: 'spares_known_networks' },
  }).filter((r) => r.kind === 'user_widen');
  return [...out, ...widen];
}

/**
 * Lock durations (ms) by level: the first lock of a key lasts `baseSeconds`, each next one
 * (within the level memory) twice the previous, up to `maxSeconds`; the last entry repeats.
 */
export function backoffSchedule(baseSeconds: number, maxSeconds: number): number[] {
  const schedule: number[] = [];
  let seconds = baseSeconds;
  for (;;) {
    if (seconds >= maxSeconds) {
      schedule.push(maxSeconds * 1000);
      return schedule;
    }
    schedule.push(seconds * 1000);
    seconds *= 2;
  }
}

/** Duration (ms) of the lock at `level` (1 = first), or null for permanent. */
export function lockDurationMs(
  schedule: readonly number[],
  level: number,
  permanentAfterLocks: number,
): number | null {
  if (permanentAfterLocks > 0 && level > permanentAfterLocks) return null;
  return schedule[Math.min(Math.max(level, 1), schedule.length) - 1]!;
}
