import { describe, expect, it } from 'vitest';
import { ConfigError, DEFAULT_WEBHOOK_DENIED_NETWORKS } from '@twofold/config';
import { loadSessionBroadcasterConfig } from './config.js';

const base = {
  KAFKA_BROKERS: '127.0.0.1:9092',
  REDIS_URL: 'redis://127.0.0.1:6379',
  DATABASE_URL: 'postgres://u:p@127.0.0.1:5432/db',
};

describe('loadSessionBroadcasterConfig', () => {
  it('defaults: an 8-hour session, 10 webhook attempts from 1 s, both roles', () => {
    const config = loadSessionBroadcasterConfig(base);
    expect(config.session).toEqual({ ttlSeconds: 28_800, streamMaxLen: 100_000 });
    expect(config.webhooks).toEqual({
      attempts: 10,
      backoffMs: 1_000,
      timeoutMs: 5_000,
      concurrency: 64,
      refreshMs: 5_000,
    });
    expect(config.roles).toEqual({ consume: true, deliver: true });
  });

  it('reads roles and settings', () => {
    const config = loadSessionBroadcasterConfig({
      ...base,
      TWOFOLD_SESSION_ROLES: 'deliver',
      TWOFOLD_SESSION_TTL_SECONDS: '3600',
      TWOFOLD_WEBHOOK_ATTEMPTS: '3',
    });
    expect(config.roles).toEqual({ consume: false, deliver: true });
    expect(config.session.ttlSeconds).toBe(3_600);
    expect(config.webhooks.attempts).toBe(3);
  });

  it('names every bad setting at once', () => {
    let error: unknown;
    try {
      loadSessionBroadcasterConfig({
        ...base,
        TWOFOLD_SESSION_ROLES: 'consume,relay',
        TWOFOLD_SESSION_TTL_SECONDS: '5',
        TWOFOLD_WEBHOOK_ATTEMPTS: '0',
      });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const problems = (error as ConfigError).problems.join('\n');
    expect(problems).toContain('TWOFOLD_SESSION_ROLES');
    expect(problems).toContain('TWOFOLD_SESSION_TTL_SECONDS');
    expect(problems).toContain('TWOFOLD_WEBHOOK_ATTEMPTS');
  });

  it('refuses fractions and values below each minimum, naming the range', () => {
    let error: unknown;
    try {
      loadSessionBroadcasterConfig({
        ...base,
        TWOFOLD_WEBHOOK_ATTEMPTS: '2.5',
        TWOFOLD_WEBHOOK_CONCURRENCY: '0',
        TWOFOLD_SESSION_STREAM_MAXLEN: '999',
        TWOFOLD_SESSION_TTL_SECONDS: '3600.5',
      });
    } catch (err) {
      error = err;
    }
    expect((error as ConfigError).problems).toEqual([
      'TWOFOLD_SESSION_STREAM_MAXLEN: must be a whole number of at least 1000, got 999',
      'TWOFOLD_SESSION_TTL_SECONDS: must be a whole number of at least 60, got 3600.5',
      'TWOFOLD_WEBHOOK_ATTEMPTS: must be a whole number of at least 1, got 2.5',
      'TWOFOLD_WEBHOOK_CONCURRENCY: must be a whole number of at least 1, got 0',
    ]);
  });

  it('denies webhooks to link-local and metadata networks by default; WEBHOOK_DENIED_NETWORKS replaces the list', () => {
    // The list itself is spelled out in the api's config test and libs/config's.
    expect(loadSessionBroadcasterConfig(base).webhookDeniedNetworks).toEqual(DEFAULT_WEBHOOK_DENIED_NETWORKS);
    expect(
      loadSessionBroadcasterConfig({ ...base, WEBHOOK_DENIED_NETWORKS: '169.254.0.0/16,127.0.0.0/8' })
        .webhookDeniedNetworks,
    ).toEqual(['169.254.0.0/16', '127.0.0.0/8']);
    expect(
      loadSessionBroadcasterConfig({ ...base, WEBHOOK_DENIED_NETWORKS: '' }).webhookDeniedNetworks,
    ).toEqual([]);
    expect(() =>
      loadSessionBroadcasterConfig({ ...base, WEBHOOK_DENIED_NETWORKS: '169.254.0.0/99' }),
    ).toThrow(
      /WEBHOOK_DENIED_NETWORKS: .*"169\.254\.0\.0\/99": the prefix must be a whole number from 0 to 32/,
    );
  });
});
