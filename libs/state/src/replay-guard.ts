import { randomBytes } from 'node:crypto';
import { REPLAY_GUARD_SCRIPT, replayGuardTtlSeconds } from '@twofold/otp';
import { taggedKey, type Redis } from '@twofold/redis';
import { runScript, runScriptMany } from './scripts.js';

/** Key of a user's last accepted TOTP step (hash-tagged per user). */
export function replayKey(prefix: string, username: string): string {
  return taggedKey(prefix, 'otp-step', `user:${username}`);
}

/**
 * Key of a user's enrollment version: a random token that changes whenever the user's
 * authenticator is activated or reset. Code verifiers keep the enrollment in memory under
 * the token they read it with, and check the token in the same script as the replay guard,
 * so a reset is seen by every replica at its next code. Same hash tag as the replay key;
 * like it, it takes the normalized username (as events and the enrollments table carry it).
 */
export function enrollmentVersionKey(prefix: string, username: string): string {
  return taggedKey(prefix, 'enr-ver', `user:${username}`);
}

/**
 * How long a version token lives. Its loss only costs a reload (a lost or expired token is
 * replaced by a new random one, which no cached enrollment carries).
 */
export const ENROLLMENT_VERSION_TTL_SECONDS = 7 * 24 * 3600;

const newToken = () => randomBytes(12).toString('base64url');

// KEYS[1]: version key; ARGV: a new token, ttl. The token kept (GET, or SET when absent).
// A script rather than SET NX GET, which needs Redis 7 (6.2 is supported).
const VERSION_SCRIPT = `
local v = redis.call('GET', KEYS[1])
if v then return v end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return ARGV[1]
`;

/**
 * The user's enrollment version token, created when there is none (two replicas creating
 * at once agree on the first one's). Read it before reading the enrollment, so a reset
 * after the read changes the token the copy is kept under.
 */
export async function enrollmentVersion(redis: Redis, prefix: string, username: string): Promise<string> {
  return (await runScript(
    redis,
    'twofoldEnrollmentVersion',
    VERSION_SCRIPT,
    [enrollmentVersionKey(prefix, username)],
    [newToken(), ENROLLMENT_VERSION_TTL_SECONDS],
  )) as string;
}

/**
 * {@link enrollmentVersion} of many users in one round trip (the verifier reads those of a
 * batch of logins, and stores each in the user's challenge: the api then reads the
 * enrollment after the token without a round trip of its own). Each entry is the token, or
 * undefined when it could not be read.
 */
export async function enrollmentVersions(
  redis: Redis,
  prefix: string,
  usernames: readonly string[],
): Promise<(string | undefined)[]> {
  const replies = await runScriptMany(
    redis,
    'twofoldEnrollmentVersion',
    VERSION_SCRIPT,
    usernames.map((username) => ({
      keys: [enrollmentVersionKey(prefix, username)],
      args: [newToken(), ENROLLMENT_VERSION_TTL_SECONDS],
    })),
  );
  return replies.map((reply) => (typeof reply === 'string' ? reply : undefined));
}

/**
 * Gives the user's enrollment a new version token: every copy kept by a code verifier is
 * stale from now on. Called after an activation or a reset is committed (and before a reset,
 * see the enrollment service).
 */
export async function bumpEnrollmentVersion(redis: Redis, prefix: string, username: string): Promise<void> {
  await redis.set(enrollmentVersionKey(prefix, username), newToken(), 'EX', ENROLLMENT_VERSION_TTL_SECONDS);
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

// The replay guard of REPLAY_GUARD_SCRIPT behind a check of the enrollment version: the
// step is recorded only if the code was checked against the user's current authenticator.
// KEYS[1]: replay key, KEYS[2]: version key (one slot); ARGV: step, ttl, expected token.
// Returns 1 accepted, 0 replayed or older, -1 stale (the enrollment changed: nothing written).
const VERSIONED_REPLAY_GUARD_SCRIPT = `
if redis.call('GET', KEYS[2]) ~= ARGV[3] then return -1 end
local step = tonumber(ARGV[1])
local ttl = tonumber(ARGV[2])
local last = tonumber(redis.call('GET', KEYS[1]))
if last ~= nil and last >= step then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', math.floor(ttl))
return 1
`;

/**
 * {@link acceptTimeStep} for a code checked against an enrollment read under version
 * `version` (see {@link enrollmentVersion}): `stale` when the enrollment has changed since
 * (reset, re-enrolled), in which case nothing is recorded and the caller reads it again.
 */
export async function acceptTimeStepOfVersion(
  redis: Redis,
  prefix: string,
  username: string,
  step: number,
  version: string,
  options: { period?: number; window?: number } = {},
): Promise<'accepted' | 'replayed' | 'stale'> {
  const ttl = replayGuardTtlSeconds(options.period, options.window);
  const result = await runScript(
    redis,
    'twofoldVersionedReplayGuard',
    VERSIONED_REPLAY_GUARD_SCRIPT,
    [replayKey(prefix, username), enrollmentVersionKey(prefix, username)],
    [step, ttl, version],
  );
  return result === 1 ? 'accepted' : result === 0 ? 'replayed' : 'stale';
}
