import type { Lock } from '@twofold/policy';
import type { LoginStateReader } from './login-decider.js';

/**
 * Composes the verifier's view of Redis state from the readers of the services that own
 * it: sessions (session broadcaster) and lockouts (lockout detector).
 */
export function createLoginStateReader(parts: {
  sessionsVerified: LoginStateReader['sessionVerified'];
  locks: (
    logins: readonly { username: string; ip: string }[],
  ) => Promise<readonly { userLock: Lock | null; userIpLock: Lock | null; forceSecondFactor: boolean }[]>;
}): LoginStateReader {
  return { sessionVerified: parts.sessionsVerified, lockState: parts.locks };
}
