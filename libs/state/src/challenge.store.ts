import { randomBytes } from 'node:crypto';
import { taggedKey, type Redis } from '@twofold/redis';
import { runScript, runScriptMany } from './scripts.js';

/** A prompt for the second factor, created when a login is decided `challenge`. */
export interface Challenge {
  challengeId: string;
  username: string;
  appId: string;
  session: string;
  ip: string;
  loginEventId: string;
  createdAt: string;
  expiresAt: string;
  attempts: number;
  /**
   * The user's enrollment version token when the challenge was made (see replay-guard.ts):
   * read before the challenge existed, so an enrollment read while answering it is kept
   * under a token that a reset in between has already changed.
   */
  enrollmentVersion?: string;
  /**
   * The user's authenticator as stored when the challenge was made (the secret still
   * encrypted under the key ring), read after `enrollmentVersion`: the api checks codes
   * against it without reading Postgres, and its replay guard checks the version.
   */
  sealedEnrollment?: {
    readonly ciphertext: string;
    readonly algorithm: 'SHA1' | 'SHA256' | 'SHA512';
    readonly digits: 6 | 8;
    readonly period: number;
  };
}

export const CHALLENGE_TTL_SECONDS = 300;
export const CHALLENGE_MAX_ATTEMPTS = 5;

/** Challenge ids are 128-bit random, URL-safe: the hosted page's URL carries one. */
export function newChallengeId(): string {
  return randomBytes(16).toString('base64url');
}

export function isChallengeId(value: string): boolean {
  return /^[A-Za-z0-9_-]{22}$/.test(value);
}

export function challengeKey(prefix: string, challengeId: string): string {
  return taggedKey(prefix, 'challenge', challengeId);
}

// Counts an attempt for the calling app in one round trip. KEYS[1]: the challenge;
// ARGV[1]: the app that submits ('' = any: the hosted page), ARGV[2]: the most attempts.
// Returns nil when the challenge is gone; {-1, owner app} when another app submits (no
// attempt counted); {attempts, data} otherwise, and past the limit the challenge is
// deleted in the same step (spent).
const TAKE_ATTEMPT = `
local data = redis.call('HGET', KEYS[1], 'data')
if not data then return nil end
if ARGV[1] ~= '' then
  local owner = redis.call('HGET', KEYS[1], 'app')
  if not owner then owner = cjson.decode(data)['appId'] end
  if owner ~= ARGV[1] then return {-1, owner} end
end
local attempts = redis.call('HINCRBY', KEYS[1], 'attempts', 1)
if attempts > tonumber(ARGV[2]) then redis.call('DEL', KEYS[1]) end
return {attempts, data}
`;

export type AttemptResult =
  | { kind: 'missing' }
  /** The challenge belongs to another app; no attempt was counted. */
  | { kind: 'forbidden'; ownerAppId: string }
  | { kind: 'exhausted'; challenge: Challenge }
  | { kind: 'ok'; challenge: Challenge };

// Stores a new challenge with its expiry in one step. KEYS[1]: the challenge; ARGV: data, app, ttl.
const CREATE = `
redis.call('HSET', KEYS[1], 'data', ARGV[1], 'attempts', 0, 'app', ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 1
`;

type ChallengeInput = Omit<Challenge, 'challengeId' | 'createdAt' | 'expiresAt' | 'attempts'>;

function newChallenge(input: ChallengeInput, now: number): Challenge {
  return {
    ...input,
    challengeId: newChallengeId(),
    createdAt: new Date(now).toISOString(),
    expiresAt: new Date(now + CHALLENGE_TTL_SECONDS * 1000).toISOString(),
    attempts: 0,
  };
}

export function createChallengeStore(redis: Redis, prefix: string) {
  /**
   * Stores many challenges in one round trip (the verifier creates a batch's at once).
   * Each entry is the challenge, or the error that kept it from being stored.
   */
  async function createMany(inputs: readonly ChallengeInput[]): Promise<(Challenge | Error)[]> {
    const now = Date.now();
    const challenges = inputs.map((input) => newChallenge(input, now));
    const replies = await runScriptMany(
      redis,
      'twofoldCreateChallenge',
      CREATE,
      challenges.map((c) => ({
        keys: [challengeKey(prefix, c.challengeId)],
        args: [JSON.stringify(c), c.appId, CHALLENGE_TTL_SECONDS],
      })),
    );
    return challenges.map((c, i) => (replies[i] instanceof Error ? (replies[i] as Error) : c));
  }

  return {
    async create(input: ChallengeInput): Promise<Challenge> {
      const [created] = await createMany([input]);
      if (created instanceof Error) throw created;
      return created!;
    },
    createMany,
    async get(challengeId: string): Promise<Challenge | undefined> {
      const [data, attempts] = await redis.hmget(challengeKey(prefix, challengeId), 'data', 'attempts');
      if (!data) return undefined;
      return { ...(JSON.parse(data) as Challenge), attempts: Number(attempts ?? 0) };
    },
    /**
     * Counts one verification attempt atomically; past the limit the challenge is spent
     * (deleted in the same step). With `appId`, a challenge of another app is refused
     * (`forbidden`) before any attempt is counted.
     */
    async takeAttempt(challengeId: string, options: { appId?: string } = {}): Promise<AttemptResult> {
      const result = (await runScript(
        redis,
        'twofoldTakeAttempt2',
        TAKE_ATTEMPT,
        [challengeKey(prefix, challengeId)],
        [options.appId ?? '', CHALLENGE_MAX_ATTEMPTS],
      )) as [number, string] | null;
      if (!result) return { kind: 'missing' };
      if (result[0] === -1) return { kind: 'forbidden', ownerAppId: result[1] };
      const challenge = { ...(JSON.parse(result[1]) as Challenge), attempts: result[0] };
      return { kind: result[0] > CHALLENGE_MAX_ATTEMPTS ? 'exhausted' : 'ok', challenge };
    },
    /** A challenge is answered once: deleting it makes a second submission "unknown". */
    async complete(challengeId: string): Promise<boolean> {
      return (await redis.del(challengeKey(prefix, challengeId))) === 1;
    },
  };
}
export type ChallengeStore = ReturnType<typeof createChallengeStore>;
