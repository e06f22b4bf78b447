import type { Redis } from '@twofold/redis';
import type { SecondFactorDecided } from '@twofold/contracts';
import { runScriptMany } from './scripts.js';

/** How long a decision stays readable for `?wait=decision` and for redelivered logins. */
export const DECISION_TTL_SECONDS = 600;

/** Redis channel on which decisions are announced to api replicas waiting for them. */
export function decisionChannel(prefix: string): string {
  return `${prefix}decisions`;
}

export function decisionKey(prefix: string, loginEventId: string): string {
  return `${prefix}decision:{${loginEventId}}`;
}

// Keeps a decision unless one is kept already, and announces the one kept, in one step.
// KEYS[1]: the decision; ARGV: decision JSON, ttl, channel. Returns the earlier decision
// (a redelivered login) or false when this one was stored.
const KEEP_AND_ANNOUNCE = `
local kept = redis.call('GET', KEYS[1])
if not kept then
  redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
  redis.call('PUBLISH', ARGV[3], ARGV[1])
  return false
end
redis.call('PUBLISH', ARGV[3], kept)
return kept
`;

/**
 * Decisions by login event id. The first decision stored for an event wins, so a login
 * redelivered after a crash gets the very same answer, challenge id included.
 */
export function createDecisionStore(redis: Redis, prefix: string) {
  const channel = decisionChannel(prefix);
  return {
    /** Stores the decision unless one exists; returns the one that is kept. */
    async keep(decision: SecondFactorDecided): Promise<SecondFactorDecided> {
      const key = decisionKey(prefix, decision.loginEventId);
      const stored = await redis.set(key, JSON.stringify(decision), 'EX', DECISION_TTL_SECONDS, 'NX');
      if (stored === 'OK') return decision;
      const existing = await redis.get(key);
      return existing ? (JSON.parse(existing) as SecondFactorDecided) : decision;
    },
    /**
     * Keeps a batch of decisions (first one wins per login event) and announces the kept
     * ones to waiting api replicas, in one round trip. Each entry is the decision kept, or
     * the error that kept it from Redis (the caller publishes its own decision then).
     */
    async keepAndAnnounce(
      decisions: readonly SecondFactorDecided[],
    ): Promise<(SecondFactorDecided | Error)[]> {
      const replies = await runScriptMany(
        redis,
        'twofoldKeepDecision',
        KEEP_AND_ANNOUNCE,
        decisions.map((d) => ({
          keys: [decisionKey(prefix, d.loginEventId)],
          args: [JSON.stringify(d), DECISION_TTL_SECONDS, channel],
        })),
      );
      return decisions.map((d, i) => {
        const reply = replies[i];
        if (reply instanceof Error) return reply;
        return typeof reply === 'string' ? (JSON.parse(reply) as SecondFactorDecided) : d;
      });
    },
    async announce(decisions: readonly SecondFactorDecided[]): Promise<void> {
      if (decisions.length === 0) return;
      const pipeline = redis.pipeline();
      for (const d of decisions) pipeline.publish(channel, JSON.stringify(d));
      await pipeline.exec();
    },
    async get(loginEventId: string): Promise<SecondFactorDecided | undefined> {
      const value = await redis.get(decisionKey(prefix, loginEventId));
      return value ? (JSON.parse(value) as SecondFactorDecided) : undefined;
    },
  };
}
export type DecisionStore = ReturnType<typeof createDecisionStore>;
