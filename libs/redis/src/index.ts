/** The one door to Redis: ioredis clients by role, and BullMQ queues and workers. */
export * from './client.js';
export * from './queue.js';
