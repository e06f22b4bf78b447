import { createEvent, type SecondFactorDecided, type TwofoldEvent } from '@twofold/contracts';
import type { BatchOutcome, ConsumedEvent, EventProducer } from '@twofold/kafka';
import type { DecisionStore } from '@twofold/state';
import type { Histogram, Logger, Counter } from '@twofold/telemetry';

export type DecideLogins = (
  logins: readonly TwofoldEvent<'twofold.login.succeeded'>[],
) => Promise<SecondFactorDecided[]>;

/**
 * Handles a batch of login events: decides each successful login, keeps the decision
 * (first one wins, so a redelivery repeats it) and announces it to api replicas waiting on
 * `?wait=decision`, then publishes `2fa.decided`. Redis being down does not stop decisions:
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
  return async (batch: readonly ConsumedEvent[]): Promise<BatchOutcome> => {
    const items = batch.filter(
      (c): c is ConsumedEvent & { event: TwofoldEvent<'twofold.login.succeeded'> } =>
        c.event.type === 'twofold.login.succeeded',
    );
    if (items.length === 0) return {};
    const logins = items.map((c) => c.event);
    const decidedAt = new Date().toISOString();
    const decided = await deps.decide(logins);
    // One round trip keeps each decision (the first one kept wins, so a redelivery repeats
    // it, challenge id included) and announces the kept one to api requests waiting on
    // `?wait=decision`. Then `2fa.decided`, with deterministic ids: a redelivered login
    // yields the same event (id and time), which the audit sink and every consumer
    // de-duplicate on; the audit's unique key holds the time, so a new time would be a new row.
    const stored = await deps.decisions.keepAndAnnounce(decided, decidedAt);
    const failed = stored.find((s): s is Error => s instanceof Error);
    if (failed) deps.logger.warn({ err: failed }, 'decisions not kept in Redis');
    const kept = stored.map((s, i) => (s instanceof Error ? { decision: decided[i]! } : s));
    // Ids are the app's: a kept decision of another app or session is another login that
    // used the same id, not this one redelivered. Its answer is never this login's.
    const rejected: { item: ConsumedEvent; reason: string }[] = [];
    const answered: number[] = [];
    kept.forEach(({ decision }, i) => {
      const login = logins[i]!;
      if (decision.appId === login.data.appId && decision.session === login.data.session) answered.push(i);
      else
        rejected.push({
          item: items[i]!,
          reason: `event id ${login.id} was used already by another login (app ${decision.appId}); each login needs its own id`,
        });
    });
    await deps.producer.publish(
      'secondFactor',
      answered.map((i) =>
        createEvent('twofold.2fa.decided', 'service/verifier', logins[i]!.subject, kept[i]!.decision, {
          id: `decided-${logins[i]!.id}`,
          time: kept[i]!.decidedAt ?? decidedAt,
        }),
      ),
    );
    const now = Date.now();
    for (const i of answered) {
      const d = kept[i]!.decision;
      deps.decisionsTotal.inc({ decision: d.decision, reason: d.reason });
      deps.decisionLatency.observe(Math.max(0, now - Date.parse(logins[i]!.time)) / 1000);
    }
    return { rejected };
  };
}
