import { REPLAY_GUARD_SCRIPT, replayGuardTtlSeconds } from '@twofold/otp';
import { taggedKey, type Redis } from '@twofold/redis';
import { runScript } from './scripts.js';

/** Key of a user's last accepted TOTP step (hash-tagged per user). */
export function replayKey(prefix: string, username: string): string {
  return taggedKey(prefix, 'otp-step', `user:${username}`);
}

/**
 * Records that `step` was used by `username` if it is after the last accepted step, in
 * one atomic script: of two apps submitting the same code at once, exactly one wins.
 * Returns false when the code is a replay (same step) or older than the last accepted.
 */
export async function acceptTimeStep(
  redis: Redis,
  prefix: string,
  username: string,
  step: number,
  options: { period?: number; window?: number } = {},
): Promise<boolean> {
  const ttl = replayGuardTtlSeconds(options.period, options.window);
  const accepted = await runScript(
    redis,
    'twofoldReplayGuard',
    REPLAY_GUARD_SCRIPT,
    [replayKey(prefix, username)],
    [step, ttl],
  );
  return accepted === 1;
}
