import {
  bool,
  ConfigError,
  hostPorts,
  integer,
  listenHost,
  makeExactValidator,
  millis,
  port,
  readEnv,
  str,
  url,
} from './env.js';
import { createNetworkDenylist, networkList, parseNetwork, type NetworkDenylist } from './networks.js';

/** SASL mechanisms kafkajs speaks without a plugin. */
export const KAFKA_SASL_MECHANISMS = ['plain', 'scram-sha-256', 'scram-sha-512'] as const;
export type KafkaSaslMechanism = (typeof KAFKA_SASL_MECHANISMS)[number];

/** Empty (no SASL) or one of KAFKA_SASL_MECHANISMS, in any case (`SCRAM-SHA-512` as the providers write it). */
export const kafkaSaslMechanism = makeExactValidator<KafkaSaslMechanism | ''>((input) => {
  const value = input.trim().toLowerCase();
  if (value === '') return '';
  if ((KAFKA_SASL_MECHANISMS as readonly string[]).includes(value)) return value as KafkaSaslMechanism;
  throw new Error(`must be empty (no SASL) or one of ${KAFKA_SASL_MECHANISMS.join(', ')}, got ${input}`);
});

/**
 * How the services reach Kafka: TLS and SASL, for managed Kafka (MSK, Confluent Cloud, Aiven).
 * Shared by commonEnvSpec and deploy/docker/ensure-topics.mjs, which reads only Kafka settings.
 */
export const kafkaSecurityEnvSpec = {
  KAFKA_SSL: bool({ default: false, desc: 'connect to the brokers over TLS' }),
  KAFKA_SSL_CA_FILE: str({
    default: '',
    desc: "PEM bundle of the CAs that sign the brokers' certificates (empty: Node's CAs); needs KAFKA_SSL",
  }),
  KAFKA_SASL_MECHANISM: kafkaSaslMechanism({
    default: '',
    desc: `SASL mechanism: empty (none), ${KAFKA_SASL_MECHANISMS.join(', ')}`,
  }),
  KAFKA_SASL_USERNAME: str({ default: '', desc: 'SASL user name; required with KAFKA_SASL_MECHANISM' }),
  KAFKA_SASL_PASSWORD: str({ default: '', desc: 'SASL password; required with KAFKA_SASL_MECHANISM' }),
} as const;

export interface KafkaSecurity {
  /** TLS to the brokers; caFile replaces Node's CAs when set. */
  readonly ssl: { readonly enabled: boolean; readonly caFile: string | undefined };
  /** SASL credentials; undefined when no mechanism is set. */
  readonly sasl:
    | { readonly mechanism: KafkaSaslMechanism; readonly username: string; readonly password: string }
    | undefined;
}

type KafkaSecurityEnv = ReturnType<typeof readEnv<typeof kafkaSecurityEnvSpec>>;

/**
 * Checks the Kafka security variables against each other (a mechanism needs a user name and a
 * password; credentials or a CA without what uses them are a mistake, not something to ignore)
 * and returns them as the services use them. Throws a ConfigError naming every problem; never
 * the password's value.
 */
export function toKafkaSecurity(env: KafkaSecurityEnv): KafkaSecurity {
  const problems: string[] = [];
  const mechanism = env.KAFKA_SASL_MECHANISM;
  if (mechanism) {
    for (const name of ['KAFKA_SASL_USERNAME', 'KAFKA_SASL_PASSWORD'] as const)
      if (!env[name]) problems.push(`${name} is required when KAFKA_SASL_MECHANISM is set (${mechanism})`);
  } else {
    for (const name of ['KAFKA_SASL_USERNAME', 'KAFKA_SASL_PASSWORD'] as const)
      if (env[name])
        problems.push(
          `${name} is set but KAFKA_SASL_MECHANISM is empty: set the mechanism (${KAFKA_SASL_MECHANISMS.join(', ')}) or clear ${name}`,
        );
  }
  const caFile = env.KAFKA_SSL_CA_FILE.trim();
  if (caFile && !env.KAFKA_SSL)
    problems.push(
      'KAFKA_SSL_CA_FILE is set but KAFKA_SSL is false: set KAFKA_SSL=true or clear KAFKA_SSL_CA_FILE',
    );
  if (problems.length) throw new ConfigError(problems);
  return {
    ssl: { enabled: env.KAFKA_SSL, caFile: caFile || undefined },
    sasl: mechanism
      ? { mechanism, username: env.KAFKA_SASL_USERNAME, password: env.KAFKA_SASL_PASSWORD }
      : undefined,
  };
}

/**
 * Networks session webhooks are never sent to, whatever address a webhook URL names or its host
 * name resolves to: link-local (169.254.0.0/16, where cloud metadata services answer, and
 * fe80::/10), AWS's IPv6 metadata address, Alibaba Cloud's (100.100.100.200, outside link-local), and
 * the "this host" ranges 0.0.0.0/8 and ::/128.
 * Private and loopback networks are allowed: webhook targets are usually in-house apps.
 */
export const DEFAULT_WEBHOOK_DENIED_NETWORKS: readonly string[] = Object.freeze(
  ['169.254.0.0/16', 'fe80::/10', 'fd00:ec2::254/128', '100.100.100.200/32', '0.0.0.0/8', '::/128'].map(
    (n) => parseNetwork(n).cidr,
  ),
);

/** The default list, ready to match: what a webhook check uses when it is given none. */
export const DEFAULT_WEBHOOK_DENYLIST: NetworkDenylist = createNetworkDenylist(
  DEFAULT_WEBHOOK_DENIED_NETWORKS,
);

/** Where webhooks may go: read by the api (at registration) and the session broadcaster (at delivery). */
export const webhookTargetEnvSpec = {
  WEBHOOK_DENIED_NETWORKS: networkList({
    default: DEFAULT_WEBHOOK_DENIED_NETWORKS,
    desc: 'networks (CIDR, comma-separated) webhooks are never sent to: registration refuses a URL whose address is in one, delivery refuses a host name that resolves into one; empty: none',
  }),
} as const;

/** Variables every twofold service reads. */
export const commonEnvSpec = {
  LOG_LEVEL: str({
    default: 'info',
    choices: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'],
  }),
  KAFKA_BROKERS: hostPorts({ desc: 'Kafka bootstrap servers, host:port[,host:port]' }),
  KAFKA_CLIENT_ID: str({ default: 'twofold' }),
  ...kafkaSecurityEnvSpec,
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
  } & KafkaSecurity;
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
      ...toKafkaSecurity(env),
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
