import { describe, expect, it } from 'vitest';
import { ConfigError } from '@twofold/config';
import { loadApiConfig } from './config.js';

const base = {
  KAFKA_BROKERS: '127.0.0.1:9092',
  REDIS_URL: 'redis://127.0.0.1:6379',
  DATABASE_URL: 'postgres://u:p@127.0.0.1:5432/db',
  TWOFOLD_ADMIN_KEY: 'a'.repeat(40),
  TWOFOLD_MASTER_KEYS: `k1:${Buffer.alloc(32, 1).toString('base64')}`,
  TWOFOLD_ACTIVE_KEY_ID: 'k1',
};

function problemsOf(env: Record<string, string>): readonly string[] {
  try {
    loadApiConfig({ ...base, ...env });
    return [];
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
}

describe('loadApiConfig', () => {
  it('defaults: a window of ±1 step and the documented rate limits', () => {
    const config = loadApiConfig(base);
    expect(config.totpWindow).toBe(1);
    expect(config.rateLimits).toEqual({
      verifyPerChallenge: 10,
      verifyPerApp: 60_000,
      eventsPerApp: 300_000,
    });
  });

  it('takes a TOTP window from 0 to 10 steps, and 0 to turn a rate limit off', () => {
    expect(loadApiConfig({ ...base, TOTP_WINDOW: '0' }).totpWindow).toBe(0);
    expect(loadApiConfig({ ...base, TOTP_WINDOW: '10' }).totpWindow).toBe(10);
    expect(
      loadApiConfig({ ...base, RATE_LIMIT_VERIFY_PER_CHALLENGE: '0' }).rateLimits.verifyPerChallenge,
    ).toBe(0);
  });

  // Out of range, the api started and then answered 500 to every code (verifyTotp throws).
  it.each(['11', '1.5', '-1', ''])('refuses TOTP_WINDOW=%j at start, naming the range', (value) => {
    expect(problemsOf({ TOTP_WINDOW: value })).toEqual([
      `TOTP_WINDOW: must be a whole number from 0 to 10, got ${value}`,
    ]);
  });

  it('names every bad rate limit and the pool size at once', () => {
    expect(
      problemsOf({
        RATE_LIMIT_VERIFY_PER_CHALLENGE: '-1',
        RATE_LIMIT_VERIFY_PER_APP: '2.5',
        RATE_LIMIT_EVENTS_PER_APP: 'lots',
        DATABASE_POOL_SIZE: '0',
      }),
    ).toEqual([
      'DATABASE_POOL_SIZE: must be a whole number of at least 1, got 0',
      'RATE_LIMIT_EVENTS_PER_APP: must be a whole number of at least 0, got lots',
      'RATE_LIMIT_VERIFY_PER_APP: must be a whole number of at least 0, got 2.5',
      'RATE_LIMIT_VERIFY_PER_CHALLENGE: must be a whole number of at least 0, got -1',
    ]);
  });
});
