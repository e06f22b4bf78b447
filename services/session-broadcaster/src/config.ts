import {
  deepFreeze,
  integer,
  makeExactValidator,
  millis,
  readEnv,
  commonEnvSpec,
  webhookTargetEnvSpec,
  toCommonConfig,
  type CommonConfig,
} from '@twofold/config';

/** consume, deliver or both, comma-separated. */
const sessionRoles = makeExactValidator<{ consume: boolean; deliver: boolean }>((input) => {
  const roles = input.split(',').map((r) => r.trim());
  if (roles.some((r) => r !== 'consume' && r !== 'deliver'))
    throw new Error(`must list consume, deliver or both (comma-separated), got ${input}`);
  return { consume: roles.includes('consume'), deliver: roles.includes('deliver') };
});

export const sessionBroadcasterEnvSpec = {
  ...commonEnvSpec,
  ...webhookTargetEnvSpec,
  TWOFOLD_SESSION_TTL_SECONDS: integer({ min: 60 })({
    default: 28_800,
    desc: 'how long a verified SSO session stays verified in every app (seconds), until the admin policy sets sessionTtlSeconds (which then wins)',
  }),
  TWOFOLD_SESSION_STREAM_MAXLEN: integer({ min: 1_000 })({
    default: 100_000,
    desc: 'session events kept in the Redis Stream that SSE clients resume from (Last-Event-ID)',
  }),
  TWOFOLD_WEBHOOK_ATTEMPTS: integer({ min: 1 })({
    default: 10,
    desc: 'delivery attempts per webhook before it is dead-lettered',
  }),
  TWOFOLD_WEBHOOK_BACKOFF_MS: millis({
    default: 1_000,
    desc: 'first retry delay of a failed webhook; doubles each attempt (10 attempts ≈ 8.5 min)',
  }),
  TWOFOLD_WEBHOOK_TIMEOUT_MS: millis({ default: 5_000, desc: 'how long one webhook request may take' }),
  TWOFOLD_WEBHOOK_CONCURRENCY: integer({ min: 1 })({
    default: 64,
    desc: 'webhook requests in flight per app (connections kept alive)',
  }),
  TWOFOLD_SESSION_ROLES: sessionRoles({
    default: { consume: true, deliver: true },
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
  /** Networks webhooks are never sent to (WEBHOOK_DENIED_NETWORKS), as CIDRs; checked on the address connected to. */
  readonly webhookDeniedNetworks: readonly string[];
  /** consume: Kafka → session state, topic, SSE stream, webhook jobs; deliver: the webhook workers. */
  readonly roles: { readonly consume: boolean; readonly deliver: boolean };
}

export function loadSessionBroadcasterConfig(
  env: Record<string, string | undefined> = process.env,
): SessionBroadcasterConfig {
  const raw = readEnv(sessionBroadcasterEnvSpec, env);
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
    webhookDeniedNetworks: raw.WEBHOOK_DENIED_NETWORKS,
    roles: { ...raw.TWOFOLD_SESSION_ROLES },
  });
}
