import { describe, expect, it } from 'vitest';
import { ConfigError, readEnv } from '@twofold/config';
import { loadVerifierConfig, verifierEnvSpec } from './config.js';

const base = {
  KAFKA_BROKERS: '127.0.0.1:9092',
  REDIS_URL: 'redis://127.0.0.1:6379',
  DATABASE_URL: 'postgres://u:p@127.0.0.1:5432/db',
};

describe('loadVerifierConfig', () => {
  it('keeps a policy copy it cannot confirm for at most 30 s by default', () => {
    expect(loadVerifierConfig(base).policy.maxStalenessMs).toBe(30_000);
    expect(loadVerifierConfig({ ...base, POLICY_MAX_STALENESS_MS: '5000' }).policy.maxStalenessMs).toBe(
      5_000,
    );
  });

  it.each(['4999', '300001', '1.5', '-1', '', 'soon'])('refuses POLICY_MAX_STALENESS_MS=%j', (value) => {
    expect(() => readEnv(verifierEnvSpec, { ...base, POLICY_MAX_STALENESS_MS: value })).toThrow(ConfigError);
  });
});
