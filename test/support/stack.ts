// Helpers for integration tests against the real local stack (`npm run stack:up`).
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { loadCommonConfig, type CommonConfig } from '@twofold/config';
import { topicCatalog, type TopicCatalog } from '@twofold/contracts';
import {
  createEventProducer,
  createKafka,
  deleteTopics,
  ensureTopics,
  type EventProducer,
  type Kafka,
} from '@twofold/kafka';
import type { Redis } from '@twofold/redis';
import { createPool, quoteIdent, runMigrations } from '@twofold/store';
import { createLogger, createServiceMetrics, type Logger } from '@twofold/telemetry';

export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** The settings the local stack wrote to .twofold/local.env, merged over process.env. */
export function stackEnv(): Record<string, string> {
  const text = readFileSync(`${REPO_ROOT}.twofold/local.env`, 'utf8');
  const env: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const match = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (match) env[match[1]!] = match[2]!;
  }
  return { ...(process.env as Record<string, string>), ...env };
}

export const quietLogger = (): Logger =>
  createLogger({ service: 'test', level: process.env['TEST_LOG_LEVEL'] ?? 'silent' });

/** An isolated world for one test file: its own topics, groups and Redis key prefix. */
export interface Isolated {
  id: string;
  env: Record<string, string>;
  config: CommonConfig;
  topics: TopicCatalog;
  kafka: Kafka;
  producer: EventProducer;
  logger: Logger;
  metrics: ReturnType<typeof createServiceMetrics>;
  cleanup(): Promise<void>;
}

export interface IsolationOptions {
  /** Its own Postgres schema, migrated, dropped at cleanup (for tests that change policy or apps). */
  database?: boolean;
}

export async function isolated(name: string, options: IsolationOptions = {}): Promise<Isolated> {
  const id = `${name}-${randomUUID().slice(0, 8)}`;
  const env = {
    ...stackEnv(),
    TWOFOLD_TOPIC_PREFIX: `t.${id}.`,
    TWOFOLD_GROUP_PREFIX: `t.${id}.`,
    REDIS_KEY_PREFIX: `t:${id}:`,
    ...(options.database ? { DATABASE_SCHEMA: `t_${id.replaceAll('-', '_')}` } : {}),
  };
  const config = loadCommonConfig('test', env);
  const logger = quietLogger();
  const topics = topicCatalog(config.kafka.topicPrefix);
  const kafka = createKafka({ ...config.kafka, clientId: `test-${id}`, logger });
  await ensureTopics(kafka, topics, { partitions: 3 });
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
    metrics: createServiceMetrics(`test-${id}`),
    async cleanup() {
      await producer.disconnect().catch(() => undefined);
      await deleteTopics(kafka, Object.values(topics)).catch(() => undefined);
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

/** Polls until check() returns a value other than undefined, or fails after timeoutMs. */
export async function eventually<T>(
  check: () => Promise<T | undefined>,
  timeoutMs = 20_000,
  what = 'condition',
): Promise<T> {
  const until = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < until) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`);
}

/** Deletes every key matching `pattern` (SCAN, not KEYS: other tests share the Redis). */
export async function deleteRedisKeys(redis: Redis, pattern: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    cursor = next;
    if (keys.length > 0) await redis.unlink(...keys);
  } while (cursor !== '0');
}
