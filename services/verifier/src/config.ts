import { deepFreeze, readEnv, commonEnvSpec, toCommonConfig, type CommonConfig } from '@twofold/config';

export const verifierEnvSpec = { ...commonEnvSpec } as const;

export type VerifierConfig = CommonConfig;

export function loadVerifierConfig(env: Record<string, string | undefined> = process.env): VerifierConfig {
  const raw = readEnv(verifierEnvSpec, env);
  return deepFreeze({ ...toCommonConfig(raw, 'verifier') });
}
