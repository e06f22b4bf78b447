/** The topic catalog of CONTRACT.md. Names take an optional prefix so tests can run in isolation. */
export const TOPIC_BASE_NAMES = {
  login: 'twofold.login.v1',
  secondFactor: 'twofold.2fa.v1',
  security: 'twofold.security.v1',
  session: 'twofold.session.v1',
  admin: 'twofold.admin.v1',
  dlq: 'twofold.dlq.v1',
} as const;

export type TopicRole = keyof typeof TOPIC_BASE_NAMES;
export type TopicCatalog = { readonly [K in TopicRole]: string };

export const DEFAULT_PARTITIONS = 12;

export function topicCatalog(prefix = ''): TopicCatalog {
  const entries = Object.entries(TOPIC_BASE_NAMES).map(([role, name]) => [role, `${prefix}${name}`]);
  return Object.freeze(Object.fromEntries(entries)) as TopicCatalog;
}

/** Which event types each topic carries (the admin topic carries every `twofold.admin.*`). */
export const TOPIC_EVENT_TYPES: { readonly [K in Exclude<TopicRole, 'dlq'>]: readonly string[] } = {
  login: ['twofold.login.succeeded', 'twofold.login.failed', 'twofold.logout'],
  secondFactor: [
    'twofold.2fa.decided',
    'twofold.2fa.verified',
    'twofold.2fa.failed',
    'twofold.enrollment.activated',
    'twofold.enrollment.reset',
  ],
  security: ['twofold.lockout.imposed', 'twofold.lockout.lifted', 'twofold.attack.detected'],
  session: ['twofold.session.validated', 'twofold.session.revoked'],
  admin: [],
};

/** DLQ header names: why a message was refused and where it came from. */
export const DLQ_HEADERS = {
  error: 'twofold-error',
  topic: 'twofold-topic',
  partition: 'twofold-partition',
  offset: 'twofold-offset',
  /** The consumer group that refused it (each group that reads a bad message reports it). */
  consumer: 'twofold-consumer',
} as const;
