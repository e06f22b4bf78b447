import {
  ConfigError,
  hostPorts,
  integer,
  kafkaSecurityEnvSpec,
  keyRing,
  readEnv,
  str,
  toKafkaSecurity,
  url,
} from '@twofold/config';
import { topicCatalog } from '@twofold/contracts';
import { createEventProducer, createKafka } from '@twofold/kafka';
import { createSecretKeyRing, type SecretKeyRing } from '@twofold/otp';
import { createRedis } from '@twofold/redis';
import { createEnrollmentsRepository, createPool, type Pool } from '@twofold/store';
import { createLogger, type Logger } from '@twofold/telemetry';
import { createEnrollmentService, type EnrollmentService } from '@twofold/verification';
import { CliError, type CliEnv } from './settings.js';

/** Reads variables with the services' validators; a bad or missing one is one CliError naming all. */
export function readCliEnv<S extends Parameters<typeof readEnv>[0]>(spec: S, env: CliEnv) {
  try {
    return readEnv(spec, env);
  } catch (err) {
    if (err instanceof ConfigError) throw new CliError(err.message);
    throw err;
  }
}

const databaseSpec = {
  DATABASE_URL: url({ desc: 'postgres://user:password@host:port/database' }),
  DATABASE_SCHEMA: str({ default: 'twofold' }),
};
const keysSpec = {
  TWOFOLD_MASTER_KEYS: keyRing({ desc: 'id:base64(32 bytes)[,id:key…]' }),
  TWOFOLD_ACTIVE_KEY_ID: str({ desc: 'the key id that encrypts secrets' }),
};

/** A pool on twofold's schema, closed after `run`. */
export async function withDatabase<T>(
  env: CliEnv,
  run: (pool: Pool, schema: string) => Promise<T>,
): Promise<T> {
  const settings = readCliEnv(databaseSpec, env);
  const pool = createPool({ url: settings.DATABASE_URL, schema: settings.DATABASE_SCHEMA, max: 2 });
  try {
    return await run(pool, settings.DATABASE_SCHEMA);
  } finally {
    await pool.end();
  }
}

export function keyRingFrom(env: CliEnv): SecretKeyRing {
  const settings = readCliEnv(keysSpec, env);
  if (!settings.TWOFOLD_MASTER_KEYS.has(settings.TWOFOLD_ACTIVE_KEY_ID)) {
    throw new CliError(
      `TWOFOLD_ACTIVE_KEY_ID "${settings.TWOFOLD_ACTIVE_KEY_ID}" is not a key id of TWOFOLD_MASTER_KEYS`,
    );
  }
  return createSecretKeyRing(settings.TWOFOLD_MASTER_KEYS, settings.TWOFOLD_ACTIVE_KEY_ID);
}

/** The Kafka client as the services build it; a bad TLS/SASL setting is a CliError. */
function cliKafka(
  settings: Parameters<typeof toKafkaSecurity>[0] & { KAFKA_BROKERS: string[] },
  logger: Logger,
) {
  try {
    return createKafka({
      brokers: settings.KAFKA_BROKERS,
      clientId: 'twofold-cli',
      logger,
      ...toKafkaSecurity(settings),
    });
  } catch (err) {
    if (err instanceof Error) throw new CliError(err.message);
    throw err;
  }
}

/**
 * The enrollment service as the api builds it (Postgres, Redis, the key ring, and a Kafka
 * producer so the activation is audited), for the duration of `run`.
 */
export async function withEnrollmentService<T>(
  env: CliEnv,
  run: (service: EnrollmentService) => Promise<T>,
): Promise<T> {
  const settings = readCliEnv(
    {
      ...databaseSpec,
      ...keysSpec,
      REDIS_URL: url({ desc: 'redis://host:port/db' }),
      REDIS_KEY_PREFIX: str({ default: 'tf:' }),
      KAFKA_BROKERS: hostPorts({ desc: 'host:port[,host:port]' }),
      ...kafkaSecurityEnvSpec,
      TWOFOLD_TOPIC_PREFIX: str({ default: '' }),
      // The api's window: the proving code's time step is spent for as long as the api
      // would still accept it.
      TOTP_WINDOW: integer({ min: 0, max: 10 })({ default: 1 }),
    },
    env,
  );
  const keys = keyRingFrom(env);
  const logger = createLogger({ service: 'cli', level: 'error', destination: process.stderr });
  const kafka = cliKafka(settings, logger);
  const producer = createEventProducer(kafka, {
    topics: topicCatalog(settings.TWOFOLD_TOPIC_PREFIX),
    logger,
  });
  const redis = createRedis(settings.REDIS_URL, 'state');
  const pool = createPool({ url: settings.DATABASE_URL, schema: settings.DATABASE_SCHEMA, max: 2 });
  try {
    await producer.connect();
    const service = createEnrollmentService({
      enrollments: createEnrollmentsRepository(pool),
      keyRing: keys,
      redis,
      keyPrefix: settings.REDIS_KEY_PREFIX,
      producer,
      window: settings.TOTP_WINDOW,
    });
    return await run(service);
  } finally {
    await Promise.allSettled([producer.disconnect(), redis.quit(), pool.end()]);
  }
}
