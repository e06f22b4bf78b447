import { DEFAULT_WEBHOOK_TOLERANCE_SECONDS } from './webhook-signature.js';

/**
 * Remembers the webhook deliveries an app has acted on, for as long as their timestamps
 * pass {@link verifyWebhookSignature}'s tolerance. The signature check alone lets a
 * delivery captured on the way (a proxy's log, say) be sent again within that window: a
 * `session.validated` replayed after the session was revoked would mark it verified again.
 * twofold's own retries reuse the delivery's id too, so they are recognised the same way.
 *
 * In memory, so per process: an app with several replicas behind one webhook URL keeps
 * the ids in a store they share instead (e.g. Redis `SET id 1 NX EX <2 × tolerance>`).
 */
export interface WebhookReplayGuard {
  /** True when a delivery with this id was handled already: answer 200 and do nothing. */
  alreadyHandled(id: string): boolean;
  /** Records a delivery once it has been acted on (not before: a failed one must be retried). */
  handled(id: string): void;
}

export function createWebhookReplayGuard(
  options: {
    /** The tolerance given to verifyWebhookSignature (seconds; default 300). */
    toleranceSeconds?: number;
    /** Most ids kept; the oldest go first past it (default 100,000). */
    maxEntries?: number;
    /** Clock (ms), for tests. */
    now?: () => number;
  } = {},
): WebhookReplayGuard {
  const tolerance = options.toleranceSeconds ?? DEFAULT_WEBHOOK_TOLERANCE_SECONDS;
  // A timestamp may be up to the tolerance behind or ahead of now: twice it covers both.
  const keepMs = 2 * tolerance * 1000;
  const maxEntries = options.maxEntries ?? 100_000;
  const now = options.now ?? Date.now;
  // id → when it may be forgotten. Every entry is kept equally long, so insertion order is
  // expiry order and forgetting stops at the first entry still needed.
  const seen = new Map<string, number>();

  function forgetExpired(at: number): void {
    for (const [id, until] of seen) {
      if (until > at) return;
      seen.delete(id);
    }
  }

  return {
    alreadyHandled(id) {
      forgetExpired(now());
      return seen.has(id);
    },
    handled(id) {
      const at = now();
      forgetExpired(at);
      seen.delete(id);
      seen.set(id, at + keepMs);
      if (seen.size > maxEntries) seen.delete(seen.keys().next().value as string);
    },
  };
}
