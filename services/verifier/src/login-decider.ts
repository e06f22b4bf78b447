import type { SecondFactorDecided, TwofoldEvent } from '@twofold/contracts';
import { UNKNOWN, combineLocks, decideSecondFactor, type Lock, type Unknown } from '@twofold/policy';
import { newChallengeId, type ChallengeStore } from '@twofold/state';
import type { EnrollmentsRepository } from '@twofold/store';
import type { Logger } from '@twofold/telemetry';
import { policyFor, type PolicySnapshot, type SealedEnrollment } from '@twofold/verification';

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
  /**
   * The users' enrollment version tokens (see @twofold/state), stored in their challenges
   * so the api reads an enrollment under a token without a round trip of its own.
   */
  enrollmentVersions?: (usernames: readonly string[]) => Promise<readonly (string | undefined)[]>;
  /**
   * The users' stored authenticators (encrypted), read after their versions and sealed
   * into their challenges, so the api checks a code without reading Postgres. Given the
   * versions just read (undefined where unknown), so it may answer from the copies kept
   * under them. Without it, only who is enrolled is read.
   */
  sealedEnrollments?: (
    usernames: readonly string[],
    versions: readonly (string | undefined)[],
  ) => Promise<ReadonlyMap<string, SealedEnrollment>>;
  logger: Logger;
}) {
  return async function decide(logins: readonly Login[]): Promise<SecondFactorDecided[]> {
    if (logins.length === 0) return [];
    const fresh = logins;

    const usernames = fresh.map((l) => l.subject);
    // Versions first, then the enrollments: a copy is only ever kept under a version read
    // before it (a reset in between changes the version, and the copy is refused).
    let versions: readonly (string | undefined)[] = [];
    let sealed: ReadonlyMap<string, SealedEnrollment> | undefined;
    const readEnrollments = async (): Promise<ReadonlySet<string>> => {
      if (!deps.sealedEnrollments) return deps.enrollments.enrolledAmong(usernames);
      versions = deps.enrollmentVersions ? await deps.enrollmentVersions(usernames).catch(() => []) : [];
      sealed = await deps.sealedEnrollments(usernames, versions);
      return new Set(sealed.keys());
    };
    const [enrolled, sessions, locks] = await Promise.all([
      orUnknown(readEnrollments, deps.logger, 'enrollment state'),
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

    // Decide every login (pure), then store the batch's challenges in one round trip.
    const decided: SecondFactorDecided[] = [];
    const toChallenge: number[] = [];
    fresh.forEach((login, i) => {
      const base = { loginEventId: login.id, appId: login.data.appId, session: login.data.session };
      if (!view) {
        // No policy known (none read since start, or the copy is older than the staleness
        // bound): a challenge all the same, stored, so an enrolled user can still answer it.
        toChallenge.push(i);
        decided.push({ ...base, decision: 'challenge', reason: 'state_unavailable' });
        return;
      }
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
      if (decision.decision === 'deny') {
        decided.push({ ...base, decision: 'deny', reason: 'locked', lockedUntil: decision.lockedUntil });
        return;
      }
      if (decision.decision === 'challenge') toChallenge.push(i);
      decided.push({ ...base, ...decision });
    });
    if (toChallenge.length === 0) return decided;
    const created = await deps.challenges.createMany(
      toChallenge.map((i) => {
        const login = fresh[i]!;
        return {
          username: login.subject,
          appId: login.data.appId,
          session: login.data.session,
          ip: login.data.ip,
          loginEventId: login.id,
          ...(versions[i] !== undefined ? { enrollmentVersion: versions[i] } : {}),
          ...(versions[i] !== undefined && sealed?.has(login.subject)
            ? { sealedEnrollment: sealed.get(login.subject)! }
            : {}),
        };
      }),
    );
    let failure: Error | undefined;
    toChallenge.forEach((i, k) => {
      const challenge = created[k]!;
      if (!(challenge instanceof Error)) {
        decided[i] = { ...decided[i]!, challengeId: challenge.challengeId };
        return;
      }
      // Redis is down: the answer is still "challenge" (never a skip); the id is not
      // stored, so verifying it fails and the user signs in again once Redis is back.
      failure = challenge;
      decided[i] = {
        ...decided[i]!,
        decision: 'challenge',
        reason: 'state_unavailable',
        challengeId: newChallengeId(),
      };
    });
    if (failure) deps.logger.error({ err: failure }, 'could not store a challenge');
    return decided;
  };
}
