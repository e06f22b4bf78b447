// An isolated world for a reliability test or a benchmark: its own topics (with the
// production partition count), consumer groups, Redis key prefix and Postgres schema, all
// removed afterwards — on the local stack, or on private Kafka / Postgres / Redis given in
// `env`. Shaped like the tests' `isolated()`, so `startServices` runs the real service
// processes in it.
import { randomUUID } from 'node:crypto';
import { loadCommonConfig } from '@twofold/config';
import { DEFAULT_PARTITIONS, topicCatalog } from '@twofold/contracts';
import { createEventProducer, createKafka, deleteTopics, ensureTopics } from '@twofold/kafka';
import { createRedis, waitForRedis } from '@twofold/redis';
import { createPool, quoteIdent, runMigrations } from '@twofold/store';
import { createLogger, createServiceMetrics } from '@twofold/telemetry';
import { stackEnv, type Isolated } from '../../support/stack.js';

export interface WorldOptions {
  partitions?: number;
  database?: boolean;
  /** Settings that replace the stack's (private Kafka, Postgres or Redis in reliability tests). */
  env?: Record<string, string>;
  /** Of the world's own clients (TEST_LOG_LEVEL wins); 'silent' where a broker restart is expected. */
  logLevel?: string;
}

/** Deletes every Redis key under a prefix (SCAN, so the shared server is never blocked for long). */
export async function deleteRedisPrefix(redisUrl: string, prefix: string): Promise<number> {
  const redis = createRedis(redisUrl, 'state', { commandTimeout: 30_000 });
  let deleted = 0;
  try {
    await waitForRedis(redis);
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 10_000);
      cursor = next;
      if (keys.length > 0) deleted += await redis.unlink(...keys);
    } while (cursor !== '0');
  } finally {
    await redis.quit().catch(() => undefined);
  }
  return deleted;
}

export async function isolatedWorld(name: string, options: WorldOptions = {}): Promise<Isolated> {
  const id = `${name}-${randomUUID().slice(0, 8)}`;
  const env: Record<string, string> = {
    ...stackEnv(),
    TWOFOLD_TOPIC_PREFIX: `t.${id}.`,
    TWOFOLD_GROUP_PREFIX: `t.${id}.`,
    REDIS_KEY_PREFIX: `t:${id}:`,
    ...(options.database ? { DATABASE_SCHEMA: `t_${id.replaceAll('-', '_')}` } : {}),
    ...options.env,
  };
  const config = loadCommonConfig('world', env);
  const logger = createLogger({
    service: 'world',
    level: process.env['TEST_LOG_LEVEL'] ?? options.logLevel ?? 'error',
  });
  const topics = topicCatalog(config.kafka.topicPrefix);
  const kafka = createKafka({ ...config.kafka, clientId: `world-${id}`, logger });
  await ensureTopics(kafka, topics, { partitions: options.partitions ?? DEFAULT_PARTITIONS });
  const producer = createEventProducer(kafka, { topics, logger });
  await producer.connect();
  if (options.database)
    await runMigrations({ databaseUrl: config.database.url, schema: config.database.schema });
  return {
    id,
    env,
    config,
    topics,
    kafka,
    producer,
    logger,
    metrics: createServiceMetrics(`world-${id}`),
    async cleanup() {
      await producer.disconnect().catch(() => undefined);
      await deleteTopics(kafka, Object.values(topics)).catch(() => undefined);
      await deleteRedisPrefix(config.redis.url, config.redis.keyPrefix).catch(() => undefined);
      if (options.database) {
        const pool = createPool({ url: config.database.url, schema: 'public', max: 1 });
        await pool
          .query(`DROP SCHEMA IF EXISTS ${quoteIdent(config.database.schema)} CASCADE`)
          .catch(() => undefined);
        await pool.end();
      }
    },
  };
}
