import { createEvent, type SecondFactorDecided, type TwofoldEvent } from '@twofold/contracts';
import type { ConsumedEvent, EventProducer } from '@twofold/kafka';
import type { Logger } from '@twofold/telemetry';
import type { DecisionStore } from '@twofold/state';

export type DecideLogin = (login: TwofoldEvent<'twofold.login.succeeded'>) => Promise<SecondFactorDecided>;

/**
 * Handles a batch of login events: decides each successful login, keeps the decision
 * (first one wins, so a redelivery repeats it), publishes `2fa.decided`, and announces it
 * to api replicas waiting on `?wait=decision`.
 */
export function createLoginHandler(deps: {
  decide: DecideLogin;
  decisions: DecisionStore;
  producer: EventProducer;
  logger: Logger;
}) {
  return async (batch: readonly ConsumedEvent[]) => {
    const decided: TwofoldEvent<'twofold.2fa.decided'>[] = [];
    const kept: SecondFactorDecided[] = [];
    for (const { event } of batch) {
      if (event.type !== 'twofold.login.succeeded') continue;
      const decision = await deps.decisions.keep(await deps.decide(event));
      kept.push(decision);
      // Deterministic id: a redelivered login yields the same event id, which the audit
      // sink and every consumer de-duplicate on.
      decided.push(
        createEvent('twofold.2fa.decided', 'service/verifier', event.subject, decision, {
          id: `decided-${event.id}`,
        }),
      );
    }
    await deps.producer.publish('secondFactor', decided);
    await deps.decisions.announce(kept);
  };
}
