import type { AnyTwofoldEvent } from '@twofold/contracts';
import { effectiveEventTime, type LockoutRules, type TimeAdjustment } from '@twofold/lockout';
import { lockoutSourceOf } from '@twofold/state';

/** What one consumed event means to the detector. */
export type LockoutSignal =
  | {
      readonly kind: 'failure';
      readonly id: string;
      readonly username: string;
      readonly ip: string;
      readonly network: string;
      readonly at: number;
      readonly adjusted: TimeAdjustment;
      readonly topic: 'login' | '2fa';
      /** A login.failed for a username the app has no account for (reason `unknown_user`). */
      readonly unknownUser: boolean;
    }
  /** A primary login succeeded (password right): remembered until its second factor completes. */
  | {
      readonly kind: 'login';
      readonly id: string;
      readonly username: string;
      readonly network: string;
      readonly session: string;
      readonly at: number;
    }
  /** A sign-in completed: second factor verified, or skipped by policy. Resets the streak; its network becomes known-good. */
  | {
      readonly kind: 'complete';
      readonly id: string;
      readonly username: string;
      readonly session: string;
      readonly at: number;
    }
  /**
   * A right password answered `enroll`: the user has no second factor yet, so the password
   * is all there is to pass. Resets the streak (NIST: a successful authentication); the
   * network does not become known-good, since no second factor was passed.
   */
  | { readonly kind: 'reset'; readonly id: string; readonly username: string; readonly at: number }
  | { readonly kind: 'ignored' }
  /** A valid event the detector cannot use (sent to the DLQ with the reason). */
  | { readonly kind: 'rejected'; readonly reason: string };

/** 2fa.failed reasons that are guesses; `expired` (too slow) and `locked` (a consequence of a lockout) are not. */
const GUESSING_CODE_FAILURES: ReadonlySet<string> = new Set(['bad_code', 'replayed']);

/**
 * Classifies a consumed event. Failures: every `login.failed`, and `2fa.failed` for a bad
 * or replayed code. The time it counts at is {@link effectiveEventTime} (absurd times →
 * broker time).
 */
export function lockoutSignalOf(
  event: AnyTwofoldEvent,
  brokerTimeMs: number,
  nowMs: number,
  rules: LockoutRules,
): LockoutSignal {
  switch (event.type) {
    case 'twofold.login.failed':
    case 'twofold.2fa.failed': {
      if (event.type === 'twofold.2fa.failed' && !GUESSING_CODE_FAILURES.has(event.data.reason)) {
        return { kind: 'ignored' };
      }
      const source = lockoutSourceOf(event.data.ip);
      if (!source)
        return { kind: 'rejected', reason: `data.ip "${event.data.ip}" is not a usable IP address` };
      const time = effectiveEventTime(event.time, brokerTimeMs, nowMs, rules.clock);
      return {
        kind: 'failure',
        id: event.id,
        username: event.subject,
        ip: source.ip,
        network: source.network,
        at: time.at,
        adjusted: time.adjusted,
        topic: event.type === 'twofold.login.failed' ? 'login' : '2fa',
        unknownUser: event.type === 'twofold.login.failed' && event.data.reason === 'unknown_user',
      };
    }
    case 'twofold.login.succeeded': {
      const source = lockoutSourceOf(event.data.ip);
      if (!source)
        return { kind: 'rejected', reason: `data.ip "${event.data.ip}" is not a usable IP address` };
      return {
        kind: 'login',
        id: event.id,
        username: event.subject,
        network: source.network,
        session: event.data.session,
        at: effectiveEventTime(event.time, brokerTimeMs, nowMs, rules.clock).at,
      };
    }
    case 'twofold.2fa.verified':
    case 'twofold.2fa.decided':
      if (event.type === 'twofold.2fa.decided' && event.data.decision === 'enroll') {
        return {
          kind: 'reset',
          id: event.id,
          username: event.subject,
          at: effectiveEventTime(event.time, brokerTimeMs, nowMs, rules.clock).at,
        };
      }
      if (event.type === 'twofold.2fa.decided' && event.data.decision !== 'skip') return { kind: 'ignored' };
      return {
        kind: 'complete',
        id: event.id,
        username: event.subject,
        session: event.data.session,
        at: effectiveEventTime(event.time, brokerTimeMs, nowMs, rules.clock).at,
      };
    default:
      return { kind: 'ignored' };
  }
}
