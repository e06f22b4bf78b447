import type { SecondFactorDecided } from '@twofold/contracts';
import type { Redis } from '@twofold/redis';
import { decisionChannel, parseKeptDecision, type DecisionStore } from '@twofold/state';

/**
 * Lets a request wait for the verifier's decision on a login it just published. One Redis
 * subscription per api process fans decisions out to the waiting requests.
 */
export function createDecisionWaiter(deps: {
  subscriber: Redis;
  decisions: DecisionStore;
  keyPrefix: string;
}) {
  const waiting = new Map<string, Set<(d: SecondFactorDecided) => void>>();
  const channel = decisionChannel(deps.keyPrefix);

  deps.subscriber.on('message', (from: string, message: string) => {
    if (from !== channel) return;
    let decision: SecondFactorDecided;
    try {
      decision = parseKeptDecision(message).decision;
    } catch {
      return;
    }
    const listeners = waiting.get(decision.loginEventId);
    if (!listeners) return;
    waiting.delete(decision.loginEventId);
    for (const listener of listeners) listener(decision);
  });

  return {
    start: () => deps.subscriber.subscribe(channel),
    stop: () => deps.subscriber.quit(),
    /**
     * Registers interest before `publish()` runs (so the answer cannot slip past), then
     * waits up to timeoutMs; resolves undefined on timeout. `mayBeDecided`: the event id
     * came from the app, so the login may be a repeat decided already (then the kept
     * decision is read once after publishing); an id the api just made cannot be.
     */
    async waitFor(
      loginEventId: string,
      timeoutMs: number,
      publish: () => Promise<void>,
      options: { mayBeDecided?: boolean } = {},
    ) {
      let resolveDecision!: (d: SecondFactorDecided | undefined) => void;
      const result = new Promise<SecondFactorDecided | undefined>((resolve) => (resolveDecision = resolve));
      const listeners = waiting.get(loginEventId) ?? new Set();
      listeners.add(resolveDecision);
      waiting.set(loginEventId, listeners);
      const timer = setTimeout(() => resolveDecision(undefined), timeoutMs);
      try {
        await publish();
        if (options.mayBeDecided ?? true) {
          // A repeated event id may have been decided already.
          const known = await deps.decisions.get(loginEventId).catch(() => undefined);
          if (known) resolveDecision(known);
        }
        return await result;
      } finally {
        clearTimeout(timer);
        const set = waiting.get(loginEventId);
        set?.delete(resolveDecision);
        if (set?.size === 0) waiting.delete(loginEventId);
      }
    },
  };
}
export type DecisionWaiter = ReturnType<typeof createDecisionWaiter>;
