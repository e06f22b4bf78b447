import type { SecondFactorDecided, TwofoldEvent } from '@twofold/contracts';
import { UNKNOWN, combineLocks, decideSecondFactor, type Lock, type Unknown } from '@twofold/policy';
import { newChallengeId, type ChallengeStore } from '@twofold/state';
import type { EnrollmentsRepository } from '@twofold/store';
import type { Logger } from '@twofold/telemetry';
import { policyFor, type PolicySnapshot } from '@twofold/verification';

type Login = TwofoldEvent<'twofold.login.succeeded'>;

/** What Redis says about one login's user, IP and session; throws when Redis cannot answer. */
export interface LoginStateReader {
  /** Whether each session is verified for that very user (a session verified for another user does not count). */
  sessionVerified(logins: readonly { session: string; username: string }[]): Promise<readonly boolean[]>;
  /** The user lock, the (user, IP) lock and the "force a second factor" flag. */
  lockState(
    logins: readonly { username: string; ip: string }[],
  ): Promise<readonly { userLock: Lock | null; userIpLock: Lock | null; forceSecondFactor: boolean }[]>;
}

async function orUnknown<T>(read: () => Promise<T>, logger: Logger, what: string): Promise<T | Unknown> {
  try {
    return await read();
  } catch (err) {
    logger.warn({ err }, `${what} unavailable; deciding fail-closed`);
    return UNKNOWN;
  }
}

/**
 * Decides a batch of successful logins. State is read in bulk (one query for enrollment,
 * one round trip per Redis read); what cannot be read is UNKNOWN, which the pure policy
 * turns into `challenge/state_unavailable`, never a skip. (A redelivered login is decided
 * again; the login handler keeps the first decision, challenge id included.)
 */
export function createLoginDecider(deps: {
  policy: PolicySnapshot;
  enrollments: EnrollmentsRepository;
  state: LoginStateReader;
  challenges: ChallengeStore;
  logger: Logger;
}) {
  return async function decide(logins: readonly Login[]): Promise<SecondFactorDecided[]> {
    if (logins.length === 0) return [];
    const fresh = logins;

    const [enrolled, sessions, locks] = await Promise.all([
      orUnknown(
        () => deps.enrollments.enrolledAmong(fresh.map((l) => l.subject)),
        deps.logger,
        'enrollment state',
      ),
      orUnknown(
        () =>
          deps.state.sessionVerified(fresh.map((l) => ({ session: l.data.session, username: l.subject }))),
        deps.logger,
        'session state',
      ),
      orUnknown(
        () => deps.state.lockState(fresh.map((l) => ({ username: l.subject, ip: l.data.ip }))),
        deps.logger,
        'lockout state',
      ),
    ]);
    const view = deps.policy.current();

    const decided = await Promise.all(
      fresh.map(async (login, i): Promise<SecondFactorDecided> => {
        const base = { loginEventId: login.id, appId: login.data.appId, session: login.data.session };
        if (!view) return { ...base, decision: 'challenge', reason: 'state_unavailable' };
        const lock = locks === UNKNOWN ? UNKNOWN : combineLocks([locks[i]!.userLock, locks[i]!.userIpLock]);
        const decision = decideSecondFactor({
          login: login.data,
          policy: policyFor(view, login.subject),
          state: {
            sessionVerified: sessions === UNKNOWN ? UNKNOWN : sessions[i] === true,
            enrolled: enrolled === UNKNOWN ? UNKNOWN : enrolled.has(login.subject),
            lock,
            forceSecondFactor: locks === UNKNOWN ? UNKNOWN : locks[i]!.forceSecondFactor,
          },
        });
        if (decision.decision === 'deny')
          return { ...base, decision: 'deny', reason: 'locked', lockedUntil: decision.lockedUntil };
        if (decision.decision !== 'challenge') return { ...base, ...decision };
        try {
          const challenge = await deps.challenges.create({
            username: login.subject,
            appId: login.data.appId,
            session: login.data.session,
            ip: login.data.ip,
            loginEventId: login.id,
          });
          return { ...base, ...decision, challengeId: challenge.challengeId };
        } catch (err) {
          // Redis is down: the answer is still "challenge" (never a skip); the id is not
          // stored, so verifying it fails and the user signs in again once Redis is back.
          deps.logger.error({ err }, 'could not store a challenge');
          return {
            ...base,
            decision: 'challenge',
            reason: 'state_unavailable',
            challengeId: newChallengeId(),
          };
        }
      }),
    );
    return decided;
  };
}
