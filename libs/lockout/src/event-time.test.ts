import { describe, expect, it } from 'vitest';
import { effectiveEventTime } from './event-time.js';

const clock = { maxFutureSeconds: 300, maxPastSeconds: 86_400 };
const NOW = Date.UTC(2026, 10, 28, 12, 0, 0);
const iso = (ms: number) => new Date(ms).toISOString();

describe('effectiveEventTime', () => {
  it.each([
    ['on time', NOW - 1_000, NOW - 500, NOW - 1_000, 'none'],
    ['late by a day exactly (kept)', NOW - 86_400_000, NOW, NOW - 86_400_000, 'none'],
    ['late by a day and 1 ms (broker time)', NOW - 86_400_001, NOW, NOW, 'past'],
    ['year 1990', Date.UTC(1990, 0, 1), NOW - 10, NOW - 10, 'past'],
    ['ahead by the tolerance exactly (kept)', NOW + 300_000, NOW, NOW + 300_000, 'none'],
    ['ahead by the tolerance and 1 ms', NOW + 300_001, NOW, NOW, 'future'],
    ['year 2099', Date.UTC(2099, 0, 1), NOW - 20, NOW - 20, 'future'],
    ['broker clock ahead of now: bounded by now', Date.UTC(2099, 0, 1), NOW + 3_600_000, NOW, 'future'],
    ['no broker time: now', NOW - 5, 0, NOW - 5, 'none'],
  ] as const)('%s', (_name, eventMs, brokerMs, at, adjusted) => {
    expect(effectiveEventTime(iso(eventMs), brokerMs, NOW, clock)).toEqual({ at, adjusted });
  });

  it('counts an unparsable time at the broker time', () => {
    expect(effectiveEventTime('yesterday', NOW - 7, NOW, clock)).toEqual({
      at: NOW - 7,
      adjusted: 'unparsable',
    });
  });
});
