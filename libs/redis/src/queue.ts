import {
  Queue,
  QueueEvents,
  Worker,
  UnrecoverableError,
  type ConnectionOptions,
  type JobsOptions,
  type Processor,
  type WorkerOptions,
} from 'bullmq';

export { Queue, QueueEvents, Worker, UnrecoverableError };
export type { JobsOptions, Processor, WorkerOptions, ConnectionOptions };

/** BullMQ connection settings from a redis:// URL (workers need maxRetriesPerRequest: null). */
export function queueConnection(url: string): ConnectionOptions {
  const parsed = new URL(url);
  const db = parsed.pathname.length > 1 ? Number(parsed.pathname.slice(1)) : 0;
  return {
    host: parsed.hostname,
    port: Number(parsed.port || 6379),
    db,
    ...(parsed.username ? { username: decodeURIComponent(parsed.username) } : {}),
    ...(parsed.password ? { password: decodeURIComponent(parsed.password) } : {}),
    ...(parsed.protocol === 'rediss:' ? { tls: {} } : {}),
    maxRetriesPerRequest: null,
  };
}

/** A queue under the service's key prefix (BullMQ's own prefix option keeps keys apart). */
export function createQueue<T = unknown>(
  name: string,
  options: { url: string; prefix: string; defaultJobOptions?: JobsOptions },
) {
  return new Queue<T>(name, {
    connection: queueConnection(options.url),
    prefix: `${options.prefix}bull`,
    ...(options.defaultJobOptions ? { defaultJobOptions: options.defaultJobOptions } : {}),
  });
}

export function createWorker<T = unknown, R = unknown>(
  name: string,
  processor: Processor<T, R>,
  options: { url: string; prefix: string } & Omit<WorkerOptions, 'connection' | 'prefix'>,
) {
  const { url, prefix, ...rest } = options;
  return new Worker<T, R>(name, processor, {
    connection: queueConnection(url),
    prefix: `${prefix}bull`,
    ...rest,
  });
}
