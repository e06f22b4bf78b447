import type { Redis } from '@twofold/redis';
import type { SecondFactorDecided } from '@twofold/contracts';

/** How long a decision stays readable for `?wait=decision` and for redelivered logins. */
export const DECISION_TTL_SECONDS = 600;

/** Redis channel on which decisions are announced to api replicas waiting for them. */
export function decisionChannel(prefix: string): string {
  return `${prefix}decisions`;
}

export function decisionKey(prefix: string, loginEventId: string): string {
  return `${prefix}decision:{${loginEventId}}`;
}

/**
 * Decisions by login event id. The first decision stored for an event wins (SET NX), so a
 * login redelivered after a crash gets the very same answer, challenge id included.
 */
export function createDecisionStore(redis: Redis, prefix: string) {
  return {
    /** Stores the decision unless one exists; returns the one that is kept. */
    async keep(decision: SecondFactorDecided): Promise<SecondFactorDecided> {
      const key = decisionKey(prefix, decision.loginEventId);
      const stored = await redis.set(key, JSON.stringify(decision), 'EX', DECISION_TTL_SECONDS, 'NX');
      if (stored === 'OK') return decision;
      const existing = await redis.get(key);
      return existing ? (JSON.parse(existing) as SecondFactorDecided) : decision;
    },
    async announce(decisions: readonly SecondFactorDecided[]): Promise<void> {
      if (decisions.length === 0) return;
      const pipeline = redis.pipeline();
      for (const d of decisions) pipeline.publish(decisionChannel(prefix), JSON.stringify(d));
      await pipeline.exec();
    },
    async get(loginEventId: string): Promise<SecondFactorDecided | undefined> {
      const value = await redis.get(decisionKey(prefix, loginEventId));
      return value ? (JSON.parse(value) as SecondFactorDecided) : undefined;
    },
  };
}
export type DecisionStore = ReturnType<typeof createDecisionStore>;
