import { createBatchConsumer, type EventProducer, type Kafka } from '@twofold/kafka';
import { pingRedis, type Redis } from '@twofold/redis';
import { createChallengeStore, createDecisionStore, enrollmentVersions } from '@twofold/state';
import { pingPostgres, type EnrollmentsRepository, type Pool } from '@twofold/store';
import { Counter, Histogram, type Logger, type ServiceMetrics } from '@twofold/telemetry';
import { createSealedEnrollmentReader, type PolicySnapshot } from '@twofold/verification';
import { createLoginDecider, type LoginStateReader } from './login-decider.js';
import { createLoginHandler } from './login.consumer.js';
import { coalesceBatches } from './batch-coalescer.js';

export interface VerifierDeps {
  kafka: Kafka;
  producer: EventProducer;
  redis: Redis;
  pool: Pool;
  enrollments: EnrollmentsRepository;
  policy: PolicySnapshot;
  state: LoginStateReader;
  logger: Logger;
  metrics: ServiceMetrics;
  groupId: string;
  keyPrefix: string;
}

/** The verifier: consumes twofold.login.v1 and decides every successful login. */
export function buildVerifier(deps: VerifierDeps) {
  const decisions = createDecisionStore(deps.redis, deps.keyPrefix);
  const decisionsTotal = new Counter({
    name: 'twofold_decisions_total',
    help: '2FA decisions, by decision and reason',
    labelNames: ['decision', 'reason'] as const,
    registers: [deps.metrics.registry],
  });
  const decisionLatency = new Histogram({
    name: 'twofold_decision_latency_seconds',
    help: 'From the login event time to its decision being published',
    buckets: [0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5],
    registers: [deps.metrics.registry],
  });
  const decide = createLoginDecider({
    policy: deps.policy,
    enrollments: deps.enrollments,
    state: deps.state,
    challenges: createChallengeStore(deps.redis, deps.keyPrefix),
    enrollmentVersions: (usernames) => enrollmentVersions(deps.redis, deps.keyPrefix, usernames),
    sealedEnrollments: createSealedEnrollmentReader(deps.pool),
    logger: deps.logger,
  });
  const consumer = createBatchConsumer({
    kafka: deps.kafka,
    groupId: deps.groupId,
    roles: ['login'],
    producer: deps.producer,
    logger: deps.logger,
    metrics: deps.metrics,
    partitionsConsumedConcurrently: 12,
    // The partitions' batches of one fetch are decided together (one query, one pipeline).
    handle: coalesceBatches(
      createLoginHandler({
        decide,
        decisions,
        producer: deps.producer,
        logger: deps.logger,
        decisionsTotal,
        decisionLatency,
      }),
    ),
  });
  return {
    async start() {
      await deps.policy.start();
      await consumer.start();
    },
    async stop() {
      deps.policy.stop();
      await consumer.stop();
    },
    async readiness() {
      return {
        kafka: consumer.isReady() && deps.producer.isConnected(),
        redis: await pingRedis(deps.redis),
        postgres: await pingPostgres(deps.pool),
        policy: deps.policy.current() !== undefined,
      };
    },
  };
}
