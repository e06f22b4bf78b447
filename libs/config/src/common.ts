import { hostPorts, integer, listenHost, millis, port, readEnv, str, url } from './env.js';

/** Variables every twofold service reads. */
export const commonEnvSpec = {
  LOG_LEVEL: str({
    default: 'info',
    choices: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'],
  }),
  KAFKA_BROKERS: hostPorts({ desc: 'Kafka bootstrap servers, host:port[,host:port]' }),
  KAFKA_CLIENT_ID: str({ default: 'twofold' }),
  TWOFOLD_TOPIC_PREFIX: str({ default: '', desc: 'prefix for every topic name (tests, shared clusters)' }),
  TWOFOLD_GROUP_PREFIX: str({ default: '', desc: 'prefix for consumer group ids' }),
  REDIS_URL: url({ desc: 'redis://host:port/db' }),
  REDIS_KEY_PREFIX: str({ default: 'tf:', desc: 'prefix of every Redis key and BullMQ queue' }),
  DATABASE_URL: url({ desc: 'postgres://user:password@host:port/database' }),
  DATABASE_SCHEMA: str({ default: 'twofold', desc: 'Postgres schema holding twofold tables' }),
  // 0 would leave every query waiting for a connection that never comes.
  DATABASE_POOL_SIZE: integer({ min: 1 })({ default: 10, desc: 'Postgres connections per process' }),
  METRICS_PORT: port({ default: 9464, desc: 'port of /healthz, /readyz and /metrics' }),
  METRICS_HOST: listenHost({
    default: '::',
    desc: 'address of /healthz, /readyz and /metrics: :: (every IPv6 and IPv4 address; 0.0.0.0 where the host has no IPv6) or one address',
  }),
  SHUTDOWN_TIMEOUT_MS: millis({ default: 20_000, desc: 'deadline for a graceful stop on SIGTERM' }),
} as const;

export interface CommonConfig {
  readonly logLevel: string;
  readonly kafka: {
    readonly brokers: readonly string[];
    readonly clientId: string;
    readonly topicPrefix: string;
    readonly groupPrefix: string;
  };
  readonly redis: { readonly url: string; readonly keyPrefix: string };
  readonly database: { readonly url: string; readonly schema: string; readonly poolSize: number };
  readonly metricsPort: number;
  readonly metricsHost: string;
  readonly shutdownTimeoutMs: number;
}

type CommonEnv = ReturnType<typeof readEnv<typeof commonEnvSpec>>;

/** Maps the flat environment into the nested, frozen shape services use. */
export function toCommonConfig(env: CommonEnv, serviceName: string): CommonConfig {
  return deepFreeze({
    logLevel: env.LOG_LEVEL,
    kafka: {
      brokers: env.KAFKA_BROKERS,
      clientId: `${env.KAFKA_CLIENT_ID}-${serviceName}`,
      topicPrefix: env.TWOFOLD_TOPIC_PREFIX,
      groupPrefix: env.TWOFOLD_GROUP_PREFIX,
    },
    redis: { url: env.REDIS_URL, keyPrefix: env.REDIS_KEY_PREFIX },
    database: { url: env.DATABASE_URL, schema: env.DATABASE_SCHEMA, poolSize: env.DATABASE_POOL_SIZE },
    metricsPort: env.METRICS_PORT,
    metricsHost: env.METRICS_HOST,
    shutdownTimeoutMs: env.SHUTDOWN_TIMEOUT_MS,
  });
}

/** Reads the variables every service shares. */
export function loadCommonConfig(serviceName: string, env: Record<string, string | undefined> = process.env) {
  return toCommonConfig(readEnv(commonEnvSpec, env), serviceName);
}

export function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value) && !(value instanceof Map)) {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}
