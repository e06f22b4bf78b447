import { deepFreeze, readEnv, commonEnvSpec, toCommonConfig, type CommonConfig } from '@twofold/config';

export const lockoutDetectorEnvSpec = { ...commonEnvSpec } as const;
export type LockoutDetectorConfig = CommonConfig;

export function loadLockoutDetectorConfig(
  env: Record<string, string | undefined> = process.env,
): LockoutDetectorConfig {
  return deepFreeze({ ...toCommonConfig(readEnv(lockoutDetectorEnvSpec, env), 'lockout-detector') });
}
