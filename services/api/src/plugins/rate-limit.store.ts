import type { FastifyRateLimitStore, FastifyRateLimitStoreCtor } from '@fastify/rate-limit';
import type { Redis } from '@twofold/redis';
import { runScript } from '@twofold/state';

// Counts `ARGV[1]` requests in the key's window (fixed, `ARGV[2]` ms from its first count).
// Returns the count after them and the window's remaining ms.
const CLAIM_SCRIPT = `
local current = redis.call('INCRBY', KEYS[1], ARGV[1])
if current == tonumber(ARGV[1]) then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return { current, tonumber(ARGV[2]) }
end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  ttl = tonumber(ARGV[2])
end
return { current, ttl }
`;

/**
 * How many requests a replica counts in Redis at once for a limit of `max` per window: one
 * for small limits (a challenge's 10 codes are counted exactly, one by one), up to 100 for
 * large ones (an app's 300,000 events a minute), so a busy app costs one Redis round trip per
 * 100 requests instead of one per request. A replica's unused claim makes the others refuse
 * early by at most that much: each claim is at most 1 % of the limit.
 */
export function claimSize(max: number): number {
  return Math.max(1, Math.min(100, Math.floor(max / 100)));
}

interface Claim {
  /** The window's count in Redis after this replica's claim. */
  total: number;
  /** Requests of the claim not used yet. */
  left: number;
  /** When the window ends (ms since epoch, this process's clock). */
  endsAt: number;
}

type Result = { current: number; ttl: number };

/**
 * A store for @fastify/rate-limit whose counters live in Redis (every api replica shares
 * them) but are claimed in blocks (see {@link claimSize}). `current` is what the window has
 * counted so far up to this request, so the plugin refuses once `max` is passed, as with
 * its own Redis store. Redis failing fails the request's count (the plugin then lets it
 * pass: the code verifier itself fails closed).
 */
export function leasedRedisStore(redis: Redis, nameSpace: string) {
  const claims = new Map<string, Claim>();
  const claiming = new Map<string, Promise<void>>();

  async function claim(key: string, size: number, timeWindow: number): Promise<Claim> {
    const [total, ttl] = (await runScript(
      redis,
      'twofoldRateLimitClaim',
      CLAIM_SCRIPT,
      [key],
      [size, timeWindow],
    )) as [number, number];
    return { total, left: size, endsAt: Date.now() + ttl };
  }

  /** Takes one request of the key's claim, claiming a new block when there is none left. */
  async function take(key: string, max: number, timeWindow: number): Promise<Result> {
    const size = claimSize(max);
    if (size === 1) {
      const exact = await claim(key, 1, timeWindow);
      return { current: exact.total, ttl: Math.max(0, exact.endsAt - Date.now()) };
    }
    for (;;) {
      const now = Date.now();
      const current = claims.get(key);
      if (current && current.left > 0 && current.endsAt > now) {
        current.left--;
        // The block's requests count in order: the first is total - size + 1.
        return { current: current.total - current.left, ttl: current.endsAt - now };
      }
      let pending = claiming.get(key);
      if (!pending) {
        pending = claim(key, size, timeWindow)
          .then((next) => {
            if (claims.size > 10_000) for (const [k, c] of claims) if (c.endsAt <= now) claims.delete(k);
            claims.set(key, next);
          })
          .finally(() => claiming.delete(key));
        claiming.set(key, pending);
      }
      await pending;
    }
  }

  const store: FastifyRateLimitStore = {
    incr(key, callback, timeWindow, max) {
      take(`${nameSpace}${key}`, max, timeWindow).then(
        (result) => callback(null, result),
        (err: unknown) => callback(err instanceof Error ? err : new Error(String(err))),
      );
    },
    // Our limiters' keys name their bucket already (see request-limits.plugin.ts).
    child: () => store,
  };
  return class LeasedRedisStore {
    constructor() {
      return store;
    }
  } as unknown as FastifyRateLimitStoreCtor;
}
