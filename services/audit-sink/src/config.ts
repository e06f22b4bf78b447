import { deepFreeze, readEnv, commonEnvSpec, toCommonConfig, type CommonConfig } from '@twofold/config';

export const auditSinkEnvSpec = { ...commonEnvSpec } as const;
export type AuditSinkConfig = CommonConfig;

export function loadAuditSinkConfig(env: Record<string, string | undefined> = process.env): AuditSinkConfig {
  return deepFreeze({ ...toCommonConfig(readEnv(auditSinkEnvSpec, env), 'audit-sink') });
}
