import { describe, expect, it } from 'vitest';
import { ConfigError } from '@twofold/config';
import { loadLockoutDetectorConfig } from './config.js';

const base = {
  KAFKA_BROKERS: '127.0.0.1:9092',
  REDIS_URL: 'redis://127.0.0.1:6379',
  DATABASE_URL: 'postgres://u:p@127.0.0.1:5432/db',
};

describe('loadLockoutDetectorConfig', () => {
  it('defaults, and the metrics address', () => {
    const config = loadLockoutDetectorConfig(base);
    expect(config.lockout).toMatchObject({
      partitionsConcurrency: 4,
      basesPerScript: 64,
      liftConcurrency: 8,
    });
    expect(config.metricsHost).toBe('::');
  });

  it('names every bad concurrency setting at once, with the allowed range', () => {
    let error: unknown;
    try {
      loadLockoutDetectorConfig({
        ...base,
        LOCKOUT_PARTITIONS_CONCURRENCY: '0',
        LOCKOUT_BASES_PER_SCRIPT: '1.5',
        LOCKOUT_LIFT_CONCURRENCY: '-2',
      });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).problems).toEqual([
      'LOCKOUT_BASES_PER_SCRIPT: must be a whole number of at least 1, got 1.5',
      'LOCKOUT_LIFT_CONCURRENCY: must be a whole number of at least 1, got -2',
      'LOCKOUT_PARTITIONS_CONCURRENCY: must be a whole number of at least 1, got 0',
    ]);
  });
});
