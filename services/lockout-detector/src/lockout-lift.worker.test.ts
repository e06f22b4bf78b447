import { describe, expect, it } from 'vitest';
import { LIFT_RETRY, liftRetryDelay } from './lockout-lift.worker.js';

describe('lift job retries', () => {
  it('outlast a day of Kafka outage, backing off exponentially up to a few minutes', () => {
    // BullMQ asks for the delay after each failed attempt but the last.
    const delays = Array.from({ length: LIFT_RETRY.attempts - 1 }, (_, i) => liftRetryDelay(i + 1));
    const horizon = delays.reduce((sum, d) => sum + d, 0);
    expect(horizon).toBeGreaterThanOrEqual(24 * 3_600_000);
    expect(delays[0]).toBe(500);
    expect(delays[1]).toBe(1_000);
    expect(Math.max(...delays)).toBeLessThanOrEqual(5 * 60_000);
  });
});
