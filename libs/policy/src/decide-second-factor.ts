import type { DecisionKind, DecisionReasonKind, LoginSucceeded } from '@twofold/contracts';
import { resolveRequirement, type RequirementRules } from './requirement.js';

/** A piece of state that could not be read (Redis unreachable). */
export const UNKNOWN = 'unknown';
export type Unknown = typeof UNKNOWN;

/** A lockout in force: until an ISO time, or permanently (`until: null`). */
export interface Lock {
  readonly until: string | null;
}

/** The facts of one successful primary login that the policy looks at. */
export interface LoginFacts {
  readonly method: LoginSucceeded['method'];
  readonly appId: string;
  readonly idp?: string | undefined;
  /** RFC 8176 authentication methods the IdP asserted. */
  readonly amr?: readonly string[] | undefined;
  readonly groups?: readonly string[] | undefined;
}

/** When a login through the SSO / an IdP counts as a second factor. */
export interface SkipOnSsoPolicy {
  readonly enabled: boolean;
  /** Only these IdPs (exact `idp` values) are trusted; unset trusts any, empty trusts none. */
  readonly trustedIdps?: readonly string[] | undefined;
  /** Only skip when `amr` holds one of {@link SECOND_FACTOR_AMR}. */
  readonly requireMfaAmr?: boolean | undefined;
}

/** The admin's policy as it applies to this user and app. */
export interface SecondFactorPolicy extends RequirementRules {
  readonly skipOnSso: SkipOnSsoPolicy;
}

/** What Redis (and the store) say about the user and session; any part may be unknown. */
export interface SecondFactorState {
  /** The SSO session already passed a second factor (in any app). */
  readonly sessionVerified: boolean | Unknown;
  /** The user has an active TOTP secret. */
  readonly enrolled: boolean | Unknown;
  /** The lockout of the user or of (user, IP), combined with {@link combineLocks}. */
  readonly lock: Lock | null | Unknown;
  /** Set by the lockout detector while the user is attacked from many sources: no skips. */
  readonly forceSecondFactor: boolean | Unknown;
}

export interface SecondFactorInput {
  readonly login: LoginFacts;
  readonly policy: SecondFactorPolicy;
  readonly state: SecondFactorState;
}

// Ties each branch below to the contract's kinds: a misspelt one fails to compile.
interface Outcome<D extends DecisionKind, R extends DecisionReasonKind> {
  readonly decision: D;
  readonly reason: R;
}

/** The answer for one login, with the decisions and reasons of CONTRACT.md. */
export type SecondFactorDecision =
  | (Outcome<'deny', 'locked'> & { readonly lockedUntil: string | null })
  | Outcome<'challenge', 'policy_required' | 'state_unavailable'>
  | Outcome<'skip', 'session_verified' | 'sso' | 'exempt'>
  | Outcome<'enroll', 'not_enrolled'>;

/**
 * RFC 8176 `amr` values that show the IdP checked something besides a password:
 * multiple factors, a one-time password, a hardware or software key, a smart card.
 */
export const SECOND_FACTOR_AMR: ReadonlySet<string> = new Set(['mfa', 'otp', 'hwk', 'swk', 'sc']);

const STATE_UNAVAILABLE = { decision: 'challenge', reason: 'state_unavailable' } as const;
type SkipReason = Extract<SecondFactorDecision, { decision: 'skip' }>['reason'];

/**
 * Decides whether one successful primary login needs a second factor. Pure; in order:
 *
 * 1. A lock → `deny/locked` with `lockedUntil`.
 * 2. Unless `forceSecondFactor` is set, the first skip that applies: a session verified in
 *    any app → `skip/session_verified`; an SSO login `skipOnSso` trusts → `skip/sso`; a
 *    requirement of `exempt` (see {@link resolveRequirement}) → `skip/exempt`.
 * 3. Otherwise a second factor is due: enrolled → `challenge/policy_required`, not
 *    enrolled → `enroll/not_enrolled`.
 *
 * `skipOnSso` therefore wins over a `require` rule: narrow it with `trustedIdps` or
 * `requireMfaAmr` to keep IdP logins without a second factor out. `forceSecondFactor`
 * removes skips only: a forced user who never enrolled still gets `enroll/not_enrolled`.
 *
 * `optional` (the global default with no rule for the user, group or app) means 2FA for
 * those who want it: a user who enrolled voluntarily is challenged like anyone required
 * (their password alone no longer signs them in), a user who never enrolled is
 * `skip/exempt`.
 *
 * Fail closed: when state the answer depends on is unknown, the answer is
 * `challenge/state_unavailable`, never a skip. Unknown state that cannot change the
 * answer is ignored (an SSO skip does not need the session state, a due challenge does
 * not need `forceSecondFactor`).
 */
export function decideSecondFactor(input: SecondFactorInput): SecondFactorDecision {
  const { login, policy, state } = input;

  if (state.lock === UNKNOWN) return STATE_UNAVAILABLE;
  if (state.lock !== null) return { decision: 'deny', reason: 'locked', lockedUntil: state.lock.until };

  if (state.forceSecondFactor !== true) {
    const skip = findSkip(login, policy, state);
    if (skip === UNKNOWN) return STATE_UNAVAILABLE;
    if (skip !== null) {
      return state.forceSecondFactor === false ? { decision: 'skip', reason: skip } : STATE_UNAVAILABLE;
    }
  }

  if (state.enrolled === UNKNOWN) return STATE_UNAVAILABLE;
  if (!state.enrolled) return { decision: 'enroll', reason: 'not_enrolled' };
  return { decision: 'challenge', reason: 'policy_required' };
}

/**
 * True when `skipOnSso` lets this login through: an SSO login, from a trusted IdP when
 * a list is set, asserting a second factor in `amr` when that is required.
 */
export function isSsoSkipAllowed(login: LoginFacts, skipOnSso: SkipOnSsoPolicy): boolean {
  if (!skipOnSso.enabled || login.method !== 'sso') return false;
  if (
    skipOnSso.trustedIdps !== undefined &&
    (login.idp === undefined || !skipOnSso.trustedIdps.includes(login.idp))
  ) {
    return false;
  }
  if (skipOnSso.requireMfaAmr === true && !(login.amr ?? []).some((value) => SECOND_FACTOR_AMR.has(value))) {
    return false;
  }
  return true;
}

/**
 * The most severe of several locks (user, user+IP): any known lock wins over unknown
 * parts, a permanent one over one with an end, a later end over an earlier one. Unknown
 * when no part is known to be locked and some part is unknown.
 */
export function combineLocks(locks: readonly (Lock | null | Unknown)[]): Lock | null | Unknown {
  let combined: Lock | null = null;
  let unknown = false;
  for (const lock of locks) {
    if (lock === UNKNOWN) unknown = true;
    else if (lock !== null && (combined === null || outlasts(lock, combined))) combined = lock;
  }
  return combined ?? (unknown ? UNKNOWN : null);
}

// The skip the rules grant, UNKNOWN when one might apply but the state to tell is missing.
function findSkip(
  login: LoginFacts,
  policy: SecondFactorPolicy,
  state: SecondFactorState,
): SkipReason | Unknown | null {
  if (state.sessionVerified === true) return 'session_verified';
  if (isSsoSkipAllowed(login, policy.skipOnSso)) return 'sso';
  const { requirement } = resolveRequirement(policy, login);
  if (requirement === 'exempt') return 'exempt';
  if (requirement === 'optional' && state.enrolled !== true)
    return state.enrolled === false ? 'exempt' : UNKNOWN;
  return state.sessionVerified === UNKNOWN ? UNKNOWN : null;
}

function outlasts(a: Lock, b: Lock): boolean {
  if (b.until === null) return false;
  if (a.until === null) return true;
  return Date.parse(a.until) > Date.parse(b.until);
}
