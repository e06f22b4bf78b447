import { UNKNOWN, combineLocks, type Lock, type Unknown } from '@twofold/policy';
import type { Redis } from '@twofold/redis';
import { readLockState } from '@twofold/state';

/**
 * The lock that stops a code from being accepted: the user's, or the user's from the IP of
 * the login the challenge belongs to. A Redis error reads as UNKNOWN, which the code
 * verifier turns into 503 (fail closed).
 */
export function readLockForVerification(redis: Redis, prefix: string) {
  return async (username: string, ip: string): Promise<Lock | null | Unknown> => {
    try {
      const state = await readLockState(redis, prefix, username, ip);
      return combineLocks([state.userLock, state.userIpLock]);
    } catch {
      return UNKNOWN;
    }
  };
}
