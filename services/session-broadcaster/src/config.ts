import { deepFreeze, readEnv, commonEnvSpec, toCommonConfig, type CommonConfig } from '@twofold/config';

export const sessionBroadcasterEnvSpec = { ...commonEnvSpec } as const;
export type SessionBroadcasterConfig = CommonConfig;

export function loadSessionBroadcasterConfig(
  env: Record<string, string | undefined> = process.env,
): SessionBroadcasterConfig {
  return deepFreeze({ ...toCommonConfig(readEnv(sessionBroadcasterEnvSpec, env), 'session-broadcaster') });
}
