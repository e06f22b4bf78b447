import { describe, expect, it } from 'vitest';
import { ConfigError, keyRing, loadCommonConfig, readEnv, str } from './index.js';

const valid = {
  KAFKA_BROKERS: '127.0.0.1:9092',
  REDIS_URL: 'redis://127.0.0.1:6379',
  DATABASE_URL: 'postgres://u:p@127.0.0.1:5432/db',
};

describe('loadCommonConfig', () => {
  it('builds a nested, frozen config from a valid environment', () => {
    const config = loadCommonConfig('verifier', valid);
    expect(config.kafka.brokers).toEqual(['127.0.0.1:9092']);
    expect(config.kafka.clientId).toBe('twofold-verifier');
    expect(config.database.schema).toBe('twofold');
    expect(Object.isFrozen(config.kafka)).toBe(true);
  });

  it('names every missing or invalid variable in one error', () => {
    let error: unknown;
    try {
      loadCommonConfig('verifier', { KAFKA_BROKERS: 'not a list', METRICS_PORT: 'x' });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const message = (error as ConfigError).message;
    expect(message).toContain('DATABASE_URL is required but not set');
    expect(message).toContain('REDIS_URL is required but not set');
    expect(message).toContain('KAFKA_BROKERS: must be a comma-separated list of host:port');
    expect(message).toContain('METRICS_PORT');
    expect((error as ConfigError).problems).toHaveLength(4);
  });
});

describe('keyRing', () => {
  const spec = { KEYS: keyRing(), OTHER: str({ default: 'x' }) };
  it('parses id:base64 entries of 32 bytes', () => {
    const k = Buffer.alloc(32, 7).toString('base64');
    const env = readEnv(spec, { KEYS: `a:${k},b:${k}` });
    expect([...env.KEYS.keys()]).toEqual(['a', 'b']);
  });
  it('refuses a key of the wrong length', () => {
    expect(() => readEnv(spec, { KEYS: `a:${Buffer.alloc(16).toString('base64')}` })).toThrow(/32 bytes/);
  });
});
