import { describe, expect, it } from 'vitest';
import {
  ConfigError,
  integer,
  kafkaSecurityEnvSpec,
  keyRing,
  loadCommonConfig,
  millis,
  readEnv,
  str,
  toKafkaSecurity,
} from './index.js';

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

// A managed cluster's broker (TLS and SASL settings are tested against it).
const managed = { ...valid, KAFKA_BROKERS: 'b-1.kafka.example.com:9096' };

describe('Kafka TLS and SASL settings', () => {
  it('default to plain text without SASL', () => {
    const { kafka } = loadCommonConfig('verifier', managed);
    expect(kafka.ssl).toEqual({ enabled: false, caFile: undefined });
    expect(kafka.sasl).toBeUndefined();
  });

  it('read TLS with a CA file and SCRAM credentials, frozen with the rest', () => {
    const { kafka } = loadCommonConfig('verifier', {
      ...managed,
      KAFKA_SSL: 'true',
      KAFKA_SSL_CA_FILE: '/etc/twofold/kafka-ca/ca.crt',
      KAFKA_SASL_MECHANISM: 'scram-sha-512',
      KAFKA_SASL_USERNAME: 'twofold',
      KAFKA_SASL_PASSWORD: 's3cret',
    });
    expect(kafka.ssl).toEqual({ enabled: true, caFile: '/etc/twofold/kafka-ca/ca.crt' });
    expect(kafka.sasl).toEqual({ mechanism: 'scram-sha-512', username: 'twofold', password: 's3cret' });
    expect(Object.isFrozen(kafka.sasl)).toBe(true);
  });

  it('take the mechanism in any case, as providers write it', () => {
    const env = {
      KAFKA_SASL_MECHANISM: ' SCRAM-SHA-256 ',
      KAFKA_SASL_USERNAME: 'u',
      KAFKA_SASL_PASSWORD: 'p',
    };
    expect(toKafkaSecurity(readEnv(kafkaSecurityEnvSpec, env)).sasl?.mechanism).toBe('scram-sha-256');
    expect(toKafkaSecurity(readEnv(kafkaSecurityEnvSpec, { KAFKA_SASL_MECHANISM: '' })).sasl).toBeUndefined();
  });

  it('refuse an unknown mechanism and a KAFKA_SSL that is not a boolean', () => {
    expect(
      problemsOf(() =>
        loadCommonConfig('verifier', { ...managed, KAFKA_SASL_MECHANISM: 'gssapi', KAFKA_SSL: 'maybe' }),
      ),
    ).toEqual([
      'KAFKA_SASL_MECHANISM: must be empty (no SASL) or one of plain, scram-sha-256, scram-sha-512, got gssapi',
      expect.stringMatching(/^KAFKA_SSL: /),
    ]);
  });

  it('name the missing user name and password when a mechanism is set', () => {
    expect(
      problemsOf(() => loadCommonConfig('verifier', { ...managed, KAFKA_SASL_MECHANISM: 'plain' })),
    ).toEqual([
      'KAFKA_SASL_USERNAME is required when KAFKA_SASL_MECHANISM is set (plain)',
      'KAFKA_SASL_PASSWORD is required when KAFKA_SASL_MECHANISM is set (plain)',
    ]);
    expect(
      problemsOf(() =>
        loadCommonConfig('verifier', { ...managed, KAFKA_SASL_MECHANISM: 'plain', KAFKA_SASL_USERNAME: 'u' }),
      ),
    ).toEqual(['KAFKA_SASL_PASSWORD is required when KAFKA_SASL_MECHANISM is set (plain)']);
  });

  it('refuse credentials without a mechanism and a CA file without TLS, instead of ignoring them', () => {
    expect(
      problemsOf(() =>
        loadCommonConfig('verifier', {
          ...managed,
          KAFKA_SASL_USERNAME: 'u',
          KAFKA_SASL_PASSWORD: 'p',
          KAFKA_SSL_CA_FILE: '/ca.pem',
        }),
      ),
    ).toEqual([
      expect.stringMatching(/^KAFKA_SASL_USERNAME is set but KAFKA_SASL_MECHANISM is empty/),
      expect.stringMatching(/^KAFKA_SASL_PASSWORD is set but KAFKA_SASL_MECHANISM is empty/),
      'KAFKA_SSL_CA_FILE is set but KAFKA_SSL is false: set KAFKA_SSL=true or clear KAFKA_SSL_CA_FILE',
    ]);
  });

  it('never put the password in an error message', () => {
    const message = problemsOf(() =>
      loadCommonConfig('verifier', { ...managed, KAFKA_SASL_PASSWORD: 'hunter2-do-not-print' }),
    ).join('\n');
    expect(message).toContain('KAFKA_SASL_PASSWORD');
    expect(message).not.toContain('hunter2');
  });

  it('are part of the shared spec every service reads', async () => {
    const { commonEnvSpec } = await import('./index.js');
    for (const name of Object.keys(kafkaSecurityEnvSpec)) expect(Object.keys(commonEnvSpec)).toContain(name);
  });
});
