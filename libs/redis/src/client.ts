import { Redis, type RedisOptions } from 'ioredis';

export { Redis };
export type { RedisOptions };

export type RedisRole =
  /** State reads and writes on a request path: fail fast when Redis is unreachable (fail closed). */
  | 'state'
  /** BullMQ queues and workers: block and retry forever, as BullMQ requires. */
  | 'queue';

/**
 * A Redis client for one role. State clients queue no commands while disconnected and
 * time out quickly, so a caller learns at once that state is unavailable instead of
 * waiting (and a 2FA decision falls back to `challenge/state_unavailable`).
 */
export function createRedis(url: string, role: RedisRole, extra: RedisOptions = {}): Redis {
  const base: RedisOptions =
    role === 'state'
      ? {
          maxRetriesPerRequest: 1,
          enableOfflineQueue: false,
          commandTimeout: 1_000,
          connectTimeout: 2_000,
          retryStrategy: (times) => Math.min(50 * times, 1_000),
        }
      : { maxRetriesPerRequest: null, enableOfflineQueue: true };
  const client = new Redis(url, {
    lazyConnect: false,
    ...base,
    ...extra,
    // A list of this client's own: scripts defined on it are added (below).
    autoPipeliningIgnoredCommands: [...(extra.autoPipeliningIgnoredCommands ?? [])],
  });
  if (client.options.enableAutoPipelining) sendDefinedCommandsAlone(client);
  return client;
}

/**
 * ioredis 5.11 builds an auto-pipeline with the commands defined when it was opened: a
 * script defined while one is pending is missing from it, and the pipeline's callback then
 * crashes the process ("results[i] is not iterable"). Commands defined with
 * `defineCommand` are therefore sent on their own on an auto-pipelined client (explicit
 * pipelines still carry them); hot-path scripts use EVALSHA, which auto-pipelines safely.
 */
function sendDefinedCommandsAlone(client: Redis): void {
  const define = client.defineCommand.bind(client);
  client.defineCommand = (name, definition) => {
    client.options.autoPipeliningIgnoredCommands!.push(name);
    define(name, definition);
  };
}

/** Waits until a client is ready (state clients refuse commands before that). */
export async function waitForRedis(client: Redis, timeoutMs = 10_000): Promise<void> {
  if (client.status === 'ready') return;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`redis not ready within ${timeoutMs} ms (status ${client.status})`));
    }, timeoutMs);
    const onReady = () => {
      cleanup();
      resolve();
    };
    const cleanup = () => {
      clearTimeout(timer);
      client.off('ready', onReady);
    };
    client.on('ready', onReady);
  });
}

export async function pingRedis(client: Redis): Promise<boolean> {
  try {
    return (await client.ping()) === 'PONG';
  } catch {
    return false;
  }
}

/**
 * Key builder with a Redis Cluster hash tag, so every key of one user (or IP) lands in
 * one slot and multi-key scripts over them stay legal on a cluster.
 */
export function taggedKey(prefix: string, kind: string, tag: string, ...rest: string[]): string {
  return [`${prefix}${kind}`, `{${tag}}`, ...rest].join(':');
}
