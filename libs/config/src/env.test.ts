import { describe, expect, it } from 'vitest';
import { ConfigError, integer, keyRing, loadCommonConfig, millis, readEnv, str } from './index.js';

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

/** The problems a loader reports for env, or [] when it accepts it. */
function problemsOf(load: () => unknown): readonly string[] {
  try {
    load();
    return [];
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
}

describe('integer', () => {
  const spec = {
    WINDOW: integer({ min: 0, max: 10 })({ default: 1 }),
    POOL: integer({ min: 1 })({ default: 10 }),
  };
  it('takes whole numbers within the range, and the default when unset', () => {
    expect(readEnv(spec, { WINDOW: '0', POOL: ' 25 ' })).toMatchObject({ WINDOW: 0, POOL: 25 });
    expect(readEnv(spec, {})).toMatchObject({ WINDOW: 1, POOL: 10 });
  });
  it.each(['11', '-1', '1.5', '', 'one', '1e1', '0x5'])(
    'refuses WINDOW=%j, naming it and the range',
    (value) => {
      expect(problemsOf(() => readEnv(spec, { WINDOW: value }))).toEqual([
        `WINDOW: must be a whole number from 0 to 10, got ${value}`,
      ]);
    },
  );
  it('names a lower bound without an upper one', () => {
    expect(problemsOf(() => readEnv(spec, { POOL: '0' }))).toEqual([
      'POOL: must be a whole number of at least 1, got 0',
    ]);
  });
});

describe('millis', () => {
  const spec = { DELAY: millis({ default: 5 }) };
  it('refuses what a Node timer cannot wait (it would fire at once)', () => {
    expect(readEnv(spec, { DELAY: '2147483647' }).DELAY).toBe(2_147_483_647);
    expect(problemsOf(() => readEnv(spec, { DELAY: '2147483648' }))).toEqual([
      'DELAY: must be a whole number of milliseconds from 1 to 2147483647, got 2147483648',
    ]);
    expect(problemsOf(() => readEnv(spec, { DELAY: '0' }))).toHaveLength(1);
  });
});

describe('common numeric and listen settings', () => {
  it('refuses a Postgres pool of 0 or a fraction of a connection', () => {
    for (const size of ['0', '2.5', '-3']) {
      expect(problemsOf(() => loadCommonConfig('verifier', { ...valid, DATABASE_POOL_SIZE: size }))).toEqual([
        `DATABASE_POOL_SIZE: must be a whole number of at least 1, got ${size}`,
      ]);
    }
    expect(loadCommonConfig('verifier', { ...valid, DATABASE_POOL_SIZE: '1' }).database.poolSize).toBe(1);
  });

  it('listens for probes on :: by default; METRICS_HOST takes an address or host name', () => {
    expect(loadCommonConfig('verifier', valid).metricsHost).toBe('::');
    for (const [value, host] of [
      ['0.0.0.0', '0.0.0.0'],
      ['[::]', '::'],
      ['fd00::12', 'fd00::12'],
      ['localhost', 'localhost'],
    ]) {
      expect(loadCommonConfig('verifier', { ...valid, METRICS_HOST: value }).metricsHost).toBe(host);
    }
    expect(problemsOf(() => loadCommonConfig('verifier', { ...valid, METRICS_HOST: 'not a host' }))).toEqual([
      expect.stringMatching(/^METRICS_HOST: must be an IP address/),
    ]);
  });
});
