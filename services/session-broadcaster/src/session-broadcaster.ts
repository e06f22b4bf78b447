import { createBatchConsumer, type EventProducer, type Kafka } from '@twofold/kafka';
import { pingRedis, type Redis } from '@twofold/redis';
import type { Logger, ServiceMetrics } from '@twofold/telemetry';

export interface SessionBroadcasterDeps {
  kafka: Kafka;
  producer: EventProducer;
  redis: Redis;
  logger: Logger;
  metrics: ServiceMetrics;
  groupId: string;
  keyPrefix: string;
}

/** Walking skeleton: joins its consumer group and reads its topics; its rules land with its own issue. */
export function buildSessionBroadcaster(deps: SessionBroadcasterDeps) {
  const consumer = createBatchConsumer({
    kafka: deps.kafka,
    groupId: deps.groupId,
    roles: ['login', 'secondFactor', 'security', 'admin'],
    producer: deps.producer,
    logger: deps.logger,
    metrics: deps.metrics,
    handle: async (batch) => {
      deps.logger.debug({ events: batch.length }, 'batch read');
    },
  });
  return {
    start: () => consumer.start(),
    stop: () => consumer.stop(),
    async readiness() {
      return { kafka: consumer.isReady() && deps.producer.isConnected(), redis: await pingRedis(deps.redis) };
    },
  };
}
