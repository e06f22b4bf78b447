import {
  ConfigError,
  commonEnvSpec,
  deepFreeze,
  millis,
  num,
  readEnv,
  toCommonConfig,
  type CommonConfig,
} from '@twofold/config';

export const auditSinkEnvSpec = {
  ...commonEnvSpec,
  AUDIT_RETENTION_DAYS: num({
    default: 400,
    desc: 'days of audit events kept: daily partitions (and their hash chains) older than this are dropped',
  }),
  AUDIT_PARTITIONS_AHEAD_DAYS: num({
    default: 14,
    desc: 'days of daily partitions created ahead of time',
  }),
  AUDIT_MAINTENANCE_INTERVAL_MS: millis({
    default: 3_600_000,
    desc: 'how often the partition upkeep job (create ahead, drop past retention) runs',
  }),
  AUDIT_CONCURRENT_PARTITIONS: num({
    default: 4,
    desc: 'Kafka partitions written at once, each batch one transaction on its own connection (keep below DATABASE_POOL_SIZE)',
  }),
} as const;

export interface AuditSinkConfig extends CommonConfig {
  readonly audit: {
    readonly retentionDays: number;
    readonly partitionsAheadDays: number;
    readonly maintenanceIntervalMs: number;
    readonly concurrentPartitions: number;
  };
}

export function loadAuditSinkConfig(env: Record<string, string | undefined> = process.env): AuditSinkConfig {
  const raw = readEnv(auditSinkEnvSpec, env);
  const problems: string[] = [];
  const whole = (name: string, value: number, min: number, max: number) => {
    if (!Number.isInteger(value) || value < min || value > max)
      problems.push(`${name}: must be a whole number from ${min} to ${max}, got ${value}`);
  };
  whole('AUDIT_RETENTION_DAYS', raw.AUDIT_RETENTION_DAYS, 1, 36_500);
  whole('AUDIT_PARTITIONS_AHEAD_DAYS', raw.AUDIT_PARTITIONS_AHEAD_DAYS, 1, 366);
  whole('AUDIT_CONCURRENT_PARTITIONS', raw.AUDIT_CONCURRENT_PARTITIONS, 1, 64);
  if (raw.AUDIT_CONCURRENT_PARTITIONS >= raw.DATABASE_POOL_SIZE)
    problems.push(
      `AUDIT_CONCURRENT_PARTITIONS (${raw.AUDIT_CONCURRENT_PARTITIONS}) must be below DATABASE_POOL_SIZE (${raw.DATABASE_POOL_SIZE}): each batch in flight holds a connection, and the upkeep job and readiness check need one`,
    );
  if (problems.length) throw new ConfigError(problems);
  return deepFreeze({
    ...toCommonConfig(raw, 'audit-sink'),
    audit: {
      retentionDays: raw.AUDIT_RETENTION_DAYS,
      partitionsAheadDays: raw.AUDIT_PARTITIONS_AHEAD_DAYS,
      maintenanceIntervalMs: raw.AUDIT_MAINTENANCE_INTERVAL_MS,
      concurrentPartitions: raw.AUDIT_CONCURRENT_PARTITIONS,
    },
  });
}
