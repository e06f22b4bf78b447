import type { LockoutRules } from './rules.js';

/** Global failure figures of the spray window (distinct counts are HyperLogLog estimates, ±1%). */
export interface SprayWindow {
  readonly failures: number;
  readonly distinctUsers: number;
  readonly distinctIps: number;
  /** Distinct (user, IP) pairs. */
  readonly distinctPairs: number;
  /** Average failures per window over the baseline windows before this one (0 without history). */
  readonly baselineFailures: number;
}

export interface SprayAssessment {
  readonly detected: boolean;
  /** The figures and thresholds, published as the `evidence` of `attack.detected/password_spraying`. */
  readonly evidence: Readonly<Record<string, number>>;
}

/**
 * Password spraying: a rise in failures spread thin over many users and many IPs. Each
 * condition must hold: at least `minFailures` failures, `minUsers` distinct users and
 * `minIps` distinct IPs in the window; at most `maxFailuresPerPair` failures per distinct
 * (user, IP) pair (thin: not one source hammering one account); and at least `riseFactor`
 * times the baseline (the normal rate of typos does not alarm).
 */
export function assessSpray(rules: LockoutRules['spray'], window: SprayWindow): SprayAssessment {
  const perPair = window.distinctPairs > 0 ? window.failures / window.distinctPairs : 0;
  const rise = window.baselineFailures > 0 ? window.failures / window.baselineFailures : Infinity;
  const detected =
    window.failures >= rules.minFailures &&
    window.distinctUsers >= rules.minUsers &&
    window.distinctIps >= rules.minIps &&
    perPair <= rules.maxFailuresPerPair &&
    window.failures >= rules.riseFactor * window.baselineFailures;
  return {
    detected,
    evidence: {
      windowSeconds: rules.windowSeconds,
      failures: window.failures,
      distinctUsers: window.distinctUsers,
      distinctIps: window.distinctIps,
      distinctPairs: window.distinctPairs,
      failuresPerPair: round(perPair),
      baselineFailuresPerWindow: round(window.baselineFailures),
      ...(Number.isFinite(rise) ? { riseOverBaseline: round(rise) } : {}),
    },
  };
}

const round = (n: number) => Math.round(n * 100) / 100;
