import type { LockoutRules } from './rules.js';

/** Why an event's own time was not used. */
export type TimeAdjustment = 'none' | 'future' | 'past' | 'unparsable';

export interface EffectiveTime {
  /** The time (ms) the event counts at in every window. */
  readonly at: number;
  readonly adjusted: TimeAdjustment;
}

/**
 * The time an event counts at. Windows slide on event time, so a replay or a late
 * delivery lands where it happened. An absurd time would either sit in every window for
 * ever (far future) or fall out of every window at once (far past), a silent miscount, so:
 *
 * - later than `clock.maxFutureSeconds` past the later of the broker's time and now →
 *   counted at the broker's time (`future`);
 * - earlier than `clock.maxPastSeconds` before the broker's time → counted at the
 *   broker's time (`past`);
 * - not a time at all (schema validation makes this unreachable) → the broker's time.
 *
 * The broker's time is itself bounded by `now` (a producer with a clock far ahead), so an
 * event never counts in the future.
 */
export function effectiveEventTime(
  eventTime: string,
  brokerTimeMs: number,
  nowMs: number,
  clock: LockoutRules['clock'],
): EffectiveTime {
  const broker = Number.isFinite(brokerTimeMs) && brokerTimeMs > 0 ? Math.min(brokerTimeMs, nowMs) : nowMs;
  const at = Date.parse(eventTime);
  if (!Number.isFinite(at)) return { at: broker, adjusted: 'unparsable' };
  if (at > Math.max(broker, nowMs) + clock.maxFutureSeconds * 1000) return { at: broker, adjusted: 'future' };
  if (at < broker - clock.maxPastSeconds * 1000) return { at: broker, adjusted: 'past' };
  return { at, adjusted: 'none' };
}
