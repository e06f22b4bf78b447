import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export { Counter, Gauge, Histogram, Registry };

/** Metrics every service exposes; names are what the Helm chart's alerts and dashboard use. */
export interface ServiceMetrics {
  readonly registry: Registry;
  readonly kafkaMessages: Counter<'topic' | 'outcome'>;
  readonly dlqMessages: Counter<'topic'>;
  readonly consumerLag: Gauge<'topic' | 'partition' | 'group'>;
  readonly batchDuration: Histogram<'group'>;
}

export function createServiceMetrics(service: string): ServiceMetrics {
  const registry = new Registry();
  registry.setDefaultLabels({ service });
  collectDefaultMetrics({ register: registry, prefix: 'twofold_' });
  return {
    registry,
    kafkaMessages: new Counter({
      name: 'twofold_kafka_messages_total',
      help: 'Kafka messages consumed, by outcome (ok, dlq)',
      labelNames: ['topic', 'outcome'],
      registers: [registry],
    }),
    dlqMessages: new Counter({
      name: 'twofold_dlq_messages_total',
      help: 'Messages sent to the dead-letter topic, by source topic',
      labelNames: ['topic'],
      registers: [registry],
    }),
    consumerLag: new Gauge({
      name: 'twofold_kafka_consumer_lag',
      help: 'Messages between the last consumed offset and the partition end, seen at each batch',
      labelNames: ['topic', 'partition', 'group'],
      registers: [registry],
    }),
    batchDuration: new Histogram({
      name: 'twofold_kafka_batch_duration_seconds',
      help: 'Time to handle one consumed batch, effect and commit included',
      labelNames: ['group'],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry],
    }),
  };
}
