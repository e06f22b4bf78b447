import { describe, expect, it } from 'vitest';
import { ConfigError, DEFAULT_WEBHOOK_DENIED_NETWORKS } from '@twofold/config';
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

  it('listens on :: (IPv6 and IPv4) by default; API_HOST takes an address or host name', () => {
    expect(loadApiConfig(base).http.host).toBe('::');
    for (const [value, host] of [
      ['0.0.0.0', '0.0.0.0'],
      ['[::]', '::'],
      ['fd00::12', 'fd00::12'],
      ['localhost', 'localhost'],
    ]) {
      expect(loadApiConfig({ ...base, API_HOST: value }).http.host).toBe(host);
    }
    expect(problemsOf({ API_HOST: 'not a host' })).toEqual([
      'API_HOST: must be an IP address (:: or 0.0.0.0 for every interface) or a host name, got not a host',
    ]);
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

  it('reads WEBHOOK_DENIED_NETWORKS (link-local and metadata by default) and names it when a network is bad', () => {
    // The list itself is spelled out in libs/config's networks test.
    expect(loadApiConfig(base).webhookDeniedNetworks).toEqual(DEFAULT_WEBHOOK_DENIED_NETWORKS);
    expect(
      loadApiConfig({ ...base, WEBHOOK_DENIED_NETWORKS: '::ffff:169.254.0.0/112, 10.0.0.0/8' })
        .webhookDeniedNetworks,
    ).toEqual(['169.254.0.0/16', '10.0.0.0/8']);
    expect(loadApiConfig({ ...base, WEBHOOK_DENIED_NETWORKS: '' }).webhookDeniedNetworks).toEqual([]);
    expect(problemsOf({ WEBHOOK_DENIED_NETWORKS: '10.0.0.0/8,link-local' })).toEqual([
      'WEBHOOK_DENIED_NETWORKS: must be a comma-separated list of networks (CIDR, e.g. 169.254.0.0/16,fe80::/10) or empty: ' +
        '"link-local" is not a network: "link-local" is not an IP address; write address/prefix, e.g. 169.254.0.0/16 or fe80::/10',
    ]);
  });
});
