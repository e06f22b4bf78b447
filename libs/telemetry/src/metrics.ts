import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { LivenessCheck } from './health-server.js';

export { Counter, Gauge, Histogram, Registry };

/** Metrics every service exposes; names are what the Helm chart's alerts and dashboard use. */
export interface ServiceMetrics {
  readonly registry: Registry;
  readonly kafkaMessages: Counter<'topic' | 'outcome'>;
  readonly dlqMessages: Counter<'topic'>;
  readonly consumerLag: Gauge<'topic' | 'partition' | 'group'>;
  /** 1 while a group's consumer is stopped for good (kafkajs will not restart it). */
  readonly consumerCrashed: Gauge<'group'>;
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
      help: 'Messages between the group position and the partition end: at each batch, and from the committed offsets on a timer (so a stalled group shows)',
      labelNames: ['topic', 'partition', 'group'],
      registers: [registry],
    }),
    consumerCrashed: new Gauge({
      name: 'twofold_kafka_consumer_crashed',
      help: '1 when the group consumer stopped on an error it does not restart from; /healthz then fails so the container is restarted',
      labelNames: ['group'],
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

/**
 * Liveness of the service's Kafka consumers: false for a group whose consumer crashed
 * without a restart. Only a new process mends that, and readiness alone never restarts one.
 */
export function consumerLiveness(metrics: Pick<ServiceMetrics, 'consumerCrashed'>): LivenessCheck {
  return async () => {
    const { values } = await metrics.consumerCrashed.get();
    return Object.fromEntries(values.map((v) => [`kafka consumer ${v.labels.group}`, v.value === 0]));
  };
}
