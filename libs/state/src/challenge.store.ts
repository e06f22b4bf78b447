import { randomBytes } from 'node:crypto';
import { taggedKey, type Redis } from '@twofold/redis';
import { runScript } from './scripts.js';

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

// Counts an attempt; returns {attempts, fields…} or nil when the challenge is gone.
const TAKE_ATTEMPT = `
if redis.call('EXISTS', KEYS[1]) == 0 then return nil end
local attempts = redis.call('HINCRBY', KEYS[1], 'attempts', 1)
return {attempts, redis.call('HGET', KEYS[1], 'data')}
`;

export type AttemptResult =
  { kind: 'missing' } | { kind: 'exhausted'; challenge: Challenge } | { kind: 'ok'; challenge: Challenge };

export function createChallengeStore(redis: Redis, prefix: string) {
  return {
    async create(
      input: Omit<Challenge, 'challengeId' | 'createdAt' | 'expiresAt' | 'attempts'>,
    ): Promise<Challenge> {
      const now = Date.now();
      const challenge: Challenge = {
        ...input,
        challengeId: newChallengeId(),
        createdAt: new Date(now).toISOString(),
        expiresAt: new Date(now + CHALLENGE_TTL_SECONDS * 1000).toISOString(),
        attempts: 0,
      };
      const key = challengeKey(prefix, challenge.challengeId);
      await redis
        .multi()
        .hset(key, 'data', JSON.stringify(challenge), 'attempts', 0)
        .expire(key, CHALLENGE_TTL_SECONDS)
        .exec();
      return challenge;
    },
    async get(challengeId: string): Promise<Challenge | undefined> {
      const [data, attempts] = await redis.hmget(challengeKey(prefix, challengeId), 'data', 'attempts');
      if (!data) return undefined;
      return { ...(JSON.parse(data) as Challenge), attempts: Number(attempts ?? 0) };
    },
    /** Counts one verification attempt atomically; past the limit the challenge is spent. */
    async takeAttempt(challengeId: string): Promise<AttemptResult> {
      const key = challengeKey(prefix, challengeId);
      const result = (await runScript(redis, 'twofoldTakeAttempt', TAKE_ATTEMPT, [key], [])) as
        [number, string] | null;
      if (!result) return { kind: 'missing' };
      const challenge = { ...(JSON.parse(result[1]) as Challenge), attempts: result[0] };
      if (result[0] > CHALLENGE_MAX_ATTEMPTS) {
        await redis.del(key);
        return { kind: 'exhausted', challenge };
      }
      return { kind: 'ok', challenge };
    },
    /** A challenge is answered once: deleting it makes a second submission "unknown". */
    async complete(challengeId: string): Promise<boolean> {
      return (await redis.del(challengeKey(prefix, challengeId))) === 1;
    },
  };
}
export type ChallengeStore = ReturnType<typeof createChallengeStore>;
