import {
  ConfigError,
  commonEnvSpec,
  deepFreeze,
  integer,
  readEnv,
  str,
  toCommonConfig,
  type CommonConfig,
} from '@twofold/config';
import { LockoutRulesError, parseLockoutRules, type LockoutRules } from '@twofold/lockout';

export const lockoutDetectorEnvSpec = {
  ...commonEnvSpec,
  LOCKOUT_RULES: str({
    default: '',
    desc: 'JSON overriding lockout thresholds, e.g. {"userIp":{"failures":10}}; unset keeps the defaults. The admin policy\'s lockout entry (PUT /v1/admin/policy) applies on top, at run time',
  }),
  LOCKOUT_PARTITIONS_CONCURRENCY: integer({ min: 1 })({
    default: 4,
    desc: 'partitions of the login and 2fa topics handled at once by one replica',
  }),
  LOCKOUT_BASES_PER_SCRIPT: integer({ min: 1 })({
    default: 64,
    desc: 'users or networks counted per Redis script call; 1 on Redis Cluster',
  }),
  LOCKOUT_LIFT_CONCURRENCY: integer({ min: 1 })({ default: 8, desc: 'lift-at-expiry jobs run at once' }),
} as const;

export interface LockoutDetectorConfig extends CommonConfig {
  readonly lockout: {
    readonly rules: LockoutRules;
    readonly partitionsConcurrency: number;
    readonly basesPerScript: number;
    readonly liftConcurrency: number;
  };
}

export function loadLockoutDetectorConfig(
  env: Record<string, string | undefined> = process.env,
): LockoutDetectorConfig {
  const raw = readEnv(lockoutDetectorEnvSpec, env);
  let rules: LockoutRules;
  try {
    rules = parseLockoutRules(raw.LOCKOUT_RULES);
  } catch (err) {
    if (err instanceof LockoutRulesError)
      throw new ConfigError(err.problems.map((p) => `LOCKOUT_RULES: ${p}`));
    throw err;
  }
  return deepFreeze({
    ...toCommonConfig(raw, 'lockout-detector'),
    lockout: {
      rules,
      partitionsConcurrency: raw.LOCKOUT_PARTITIONS_CONCURRENCY,
      basesPerScript: raw.LOCKOUT_BASES_PER_SCRIPT,
      liftConcurrency: raw.LOCKOUT_LIFT_CONCURRENCY,
    },
  });
}
