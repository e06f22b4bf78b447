import { createEvent, type SecondFactorDecided, type TwofoldEvent } from '@twofold/contracts';
import type { ConsumedEvent, EventProducer } from '@twofold/kafka';
import type { DecisionStore } from '@twofold/state';
import type { Histogram, Logger, Counter } from '@twofold/telemetry';

export type DecideLogins = (
  logins: readonly TwofoldEvent<'twofold.login.succeeded'>[],
) => Promise<SecondFactorDecided[]>;

/**
 * Handles a batch of login events: decides each successful login, keeps the decision
 * (first one wins, so a redelivery repeats it), publishes `2fa.decided`, and announces it
 * to api replicas waiting on `?wait=decision`. Redis being down does not stop decisions:
 * they are published anyway (fail-closed answers), only not kept for `?wait`.
 */
export function createLoginHandler(deps: {
  decide: DecideLogins;
  decisions: DecisionStore;
  producer: EventProducer;
  logger: Logger;
  decisionsTotal: Counter<'decision' | 'reason'>;
  decisionLatency: Histogram<string>;
}) {
  return async (batch: readonly ConsumedEvent[]) => {
    const logins = batch
      .map((c) => c.event)
      .filter((e): e is TwofoldEvent<'twofold.login.succeeded'> => e.type === 'twofold.login.succeeded');
    if (logins.length === 0) return;
    const decided = await deps.decide(logins);
    const kept = await Promise.all(
      decided.map((d) =>
        deps.decisions.keep(d).catch((err: unknown) => {
          deps.logger.warn({ err }, 'decision not kept in Redis');
          return d;
        }),
      ),
    );
    // Deterministic ids: a redelivered login yields the same event id, which the audit
    // sink and every consumer de-duplicate on. Waiting api requests hear the decision at
    // once; it is kept in Redis first, so a crash before the publish repeats it unchanged.
    await Promise.all([
      deps.producer.publish(
        'secondFactor',
        kept.map((d, i) =>
          createEvent('twofold.2fa.decided', 'service/verifier', logins[i]!.subject, d, {
            id: `decided-${logins[i]!.id}`,
          }),
        ),
      ),
      deps.decisions.announce(kept).catch(() => undefined),
    ]);
    const now = Date.now();
    for (const [i, d] of kept.entries()) {
      deps.decisionsTotal.inc({ decision: d.decision, reason: d.reason });
      deps.decisionLatency.observe(Math.max(0, now - Date.parse(logins[i]!.time)) / 1000);
    }
  };
}
