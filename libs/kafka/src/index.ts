/** The one door to Kafka: client, idempotent producer, batch-consumer runner, admin. */
export * from './client.js';
export * from './producer.js';
export * from './batch-consumer.js';
export * from './admin.js';
