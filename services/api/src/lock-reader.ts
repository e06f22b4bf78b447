import { UNKNOWN, type Lock, type Unknown } from '@twofold/policy';
import type { Redis } from '@twofold/redis';

/**
 * The lock that stops a code from being accepted (the user's, or the user's from this IP).
 * Until the lockout detector's state lands this reads no lock; Redis errors are UNKNOWN,
 * which the code verifier turns into 503 (fail closed).
 */
export function readLockForVerification(redis: Redis, _prefix: string) {
  return async (_username: string, _ip: string): Promise<Lock | null | Unknown> => {
    try {
      await redis.ping();
      return null;
    } catch {
      return UNKNOWN;
    }
  };
}
