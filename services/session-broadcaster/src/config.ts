import {
  ConfigError,
  deepFreeze,
  millis,
  num,
  readEnv,
  str,
  commonEnvSpec,
  toCommonConfig,
  type CommonConfig,
} from '@twofold/config';

export const sessionBroadcasterEnvSpec = {
  ...commonEnvSpec,
  TWOFOLD_SESSION_TTL_SECONDS: num({
    default: 28_800,
    desc: 'how long a verified SSO session stays verified in every app (seconds), until the admin policy sets sessionTtlSeconds (which then wins)',
  }),
  TWOFOLD_SESSION_STREAM_MAXLEN: num({
    default: 100_000,
    desc: 'session events kept in the Redis Stream that SSE clients resume from (Last-Event-ID)',
  }),
  TWOFOLD_WEBHOOK_ATTEMPTS: num({
    default: 10,
    desc: 'delivery attempts per webhook before it is dead-lettered',
  }),
  TWOFOLD_WEBHOOK_BACKOFF_MS: millis({
    default: 1_000,
    desc: 'first retry delay of a failed webhook; doubles each attempt (10 attempts ≈ 8.5 min)',
  }),
  TWOFOLD_WEBHOOK_TIMEOUT_MS: millis({ default: 5_000, desc: 'how long one webhook request may take' }),
  TWOFOLD_WEBHOOK_CONCURRENCY: num({
    default: 64,
    desc: 'webhook requests in flight per app (connections kept alive)',
  }),
  TWOFOLD_SESSION_ROLES: str({
    default: 'consume,deliver',
    desc: 'what this process does: consume (events → state, topic, SSE, webhook queue), deliver (webhook requests), or both',
  }),
  TWOFOLD_WEBHOOK_REFRESH_MS: millis({
    default: 5_000,
    desc: 'how often the registered apps (webhook URL, secret) are re-read',
  }),
} as const;

export interface WebhookSettings {
  readonly attempts: number;
  readonly backoffMs: number;
  readonly timeoutMs: number;
  readonly concurrency: number;
  readonly refreshMs: number;
}

export interface SessionBroadcasterConfig extends CommonConfig {
  readonly session: { readonly ttlSeconds: number; readonly streamMaxLen: number };
  readonly webhooks: WebhookSettings;
  /** consume: Kafka → session state, topic, SSE stream, webhook jobs; deliver: the webhook workers. */
  readonly roles: { readonly consume: boolean; readonly deliver: boolean };
}

export function loadSessionBroadcasterConfig(
  env: Record<string, string | undefined> = process.env,
): SessionBroadcasterConfig {
  const raw = readEnv(sessionBroadcasterEnvSpec, env);
  const problems: string[] = [];
  if (!Number.isInteger(raw.TWOFOLD_SESSION_TTL_SECONDS) || raw.TWOFOLD_SESSION_TTL_SECONDS < 60) {
    problems.push('TWOFOLD_SESSION_TTL_SECONDS: must be an integer of at least 60');
  }
  if (!Number.isInteger(raw.TWOFOLD_WEBHOOK_ATTEMPTS) || raw.TWOFOLD_WEBHOOK_ATTEMPTS < 1) {
    problems.push('TWOFOLD_WEBHOOK_ATTEMPTS: must be a positive integer');
  }
  if (!Number.isInteger(raw.TWOFOLD_WEBHOOK_CONCURRENCY) || raw.TWOFOLD_WEBHOOK_CONCURRENCY < 1) {
    problems.push('TWOFOLD_WEBHOOK_CONCURRENCY: must be a positive integer');
  }
  if (!Number.isInteger(raw.TWOFOLD_SESSION_STREAM_MAXLEN) || raw.TWOFOLD_SESSION_STREAM_MAXLEN < 1_000) {
    problems.push('TWOFOLD_SESSION_STREAM_MAXLEN: must be an integer of at least 1000');
  }
  const roles = raw.TWOFOLD_SESSION_ROLES.split(',').map((r) => r.trim());
  if (roles.length === 0 || roles.some((r) => r !== 'consume' && r !== 'deliver')) {
    problems.push('TWOFOLD_SESSION_ROLES: must list consume, deliver or both (comma-separated)');
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return deepFreeze({
    ...toCommonConfig(raw, 'session-broadcaster'),
    session: { ttlSeconds: raw.TWOFOLD_SESSION_TTL_SECONDS, streamMaxLen: raw.TWOFOLD_SESSION_STREAM_MAXLEN },
    webhooks: {
      attempts: raw.TWOFOLD_WEBHOOK_ATTEMPTS,
      backoffMs: raw.TWOFOLD_WEBHOOK_BACKOFF_MS,
      timeoutMs: raw.TWOFOLD_WEBHOOK_TIMEOUT_MS,
      concurrency: raw.TWOFOLD_WEBHOOK_CONCURRENCY,
      refreshMs: raw.TWOFOLD_WEBHOOK_REFRESH_MS,
    },
    roles: { consume: roles.includes('consume'), deliver: roles.includes('deliver') },
  });
}
