import type { Kafka, EventProducer } from '@twofold/kafka';
import { createBatchConsumer } from '@twofold/kafka';
import type { Redis } from '@twofold/redis';
import { pingRedis } from '@twofold/redis';
import type { Logger, ServiceMetrics } from '@twofold/telemetry';
import type { SecondFactorDecided } from '@twofold/contracts';
import { createDecisionStore } from '@twofold/state';
import { createLoginHandler, type DecideLogin } from './login.consumer.js';

export interface VerifierDeps {
  kafka: Kafka;
  producer: EventProducer;
  redis: Redis;
  logger: Logger;
  metrics: ServiceMetrics;
  groupId: string;
  keyPrefix: string;
}

/** Until policy state is wired in, every login is asked for the second factor (fail closed). */
const challengeEveryLogin: DecideLogin = async (login) =>
  ({
    loginEventId: login.id,
    appId: login.data.appId,
    session: login.data.session,
    decision: 'challenge',
    reason: 'policy_required',
  }) satisfies SecondFactorDecided;

export function buildVerifier(deps: VerifierDeps) {
  const decisions = createDecisionStore(deps.redis, deps.keyPrefix);
  const consumer = createBatchConsumer({
    kafka: deps.kafka,
    groupId: deps.groupId,
    roles: ['login'],
    producer: deps.producer,
    logger: deps.logger,
    metrics: deps.metrics,
    partitionsConsumedConcurrently: 4,
    handle: createLoginHandler({
      decide: challengeEveryLogin,
      decisions,
      producer: deps.producer,
      logger: deps.logger,
    }),
  });
  return {
    start: () => consumer.start(),
    stop: () => consumer.stop(),
    async readiness() {
      return { kafka: consumer.isReady() && deps.producer.isConnected(), redis: await pingRedis(deps.redis) };
    },
  };
}
