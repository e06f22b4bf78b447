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

/** A decision as kept in Redis: with the time it was made, so a repeat announces that time. */
export interface KeptDecision {
  decision: SecondFactorDecided;
  /** ISO time of the first decision; absent in values kept before it was recorded. */
  decidedAt?: string;
}

/** Reads a kept (or announced) decision; `decidedAt` is kept beside it, not in the event data. */
export function parseKeptDecision(json: string): KeptDecision {
  const { decidedAt, ...decision } = JSON.parse(json) as SecondFactorDecided & { decidedAt?: unknown };
  return typeof decidedAt === 'string' ? { decision, decidedAt } : { decision };
}

/**
 * Decisions by login event id. The first decision stored for an event wins, so a login
 * redelivered after a crash gets the very same answer, challenge id and time included (so
 * the `2fa.decided` it yields is the same event, and the audit keeps one row).
 */
export function createDecisionStore(redis: Redis, prefix: string) {
  const channel = decisionChannel(prefix);
  return {
    /**
     * Keeps a batch of decisions made at `decidedAt` (first one wins per login event) and
     * announces the kept ones to waiting api replicas, in one round trip. Each entry is the
     * decision kept with its time, or the error that kept it from Redis (the caller
     * publishes its own decision then).
     */
    async keepAndAnnounce(
      decisions: readonly SecondFactorDecided[],
      decidedAt: string,
    ): Promise<(KeptDecision | Error)[]> {
      const replies = await runScriptMany(
        redis,
        'twofoldKeepDecision',
        KEEP_AND_ANNOUNCE,
        decisions.map((d) => ({
          keys: [decisionKey(prefix, d.loginEventId)],
          args: [JSON.stringify({ ...d, decidedAt }), DECISION_TTL_SECONDS, channel],
        })),
      );
      return decisions.map((d, i) => {
        const reply = replies[i];
        if (reply instanceof Error) return reply;
        return typeof reply === 'string' ? parseKeptDecision(reply) : { decision: d, decidedAt };
      });
    },
    async get(loginEventId: string): Promise<SecondFactorDecided | undefined> {
      const value = await redis.get(decisionKey(prefix, loginEventId));
      return value ? parseKeptDecision(value).decision : undefined;
    },
  };
}
export type DecisionStore = ReturnType<typeof createDecisionStore>;
