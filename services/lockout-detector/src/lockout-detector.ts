import { createBatchConsumer, type EventProducer, type Kafka } from '@twofold/kafka';
import { DEFAULT_LOCKOUT_RULES, type LockoutRules } from '@twofold/lockout';
import { pingRedis, type Redis } from '@twofold/redis';
import { createLockoutStore, type LockoutStoreSettings } from '@twofold/state';
import type { Logger, ServiceMetrics } from '@twofold/telemetry';
import { createLockoutLifts } from './lockout-lift.worker.js';
import { createLockoutMetrics } from './lockout.metrics.js';
import { createLockoutHandler } from './lockout.consumer.js';
import { createSprayMonitor } from './spray.monitor.js';
import { createLockoutRulesSource, type LockoutPolicyReader } from './lockout-rules.source.js';

export interface LockoutDetectorDeps {
  kafka: Kafka;
  producer: EventProducer;
  /** A 'state' client: counting, imposing and lifting scripts. */
  redis: Redis;
  /** For BullMQ (lift jobs), which opens its own connections. */
  redisUrl: string;
  logger: Logger;
  metrics: ServiceMetrics;
  groupId: string;
  keyPrefix: string;
  /** The rules before the admin policy's `lockout` entry (env `LOCKOUT_RULES` over the defaults). */
  rules?: LockoutRules;
  /** The admin policy (Postgres): its `lockout` entry adjusts the rules at run time. */
  policy?: LockoutPolicyReader;
  /** How often the policy version is checked (default 500 ms). */
  policyRefreshMs?: number;
  /** Milliseconds since the epoch; tests move it. */
  clock?: () => number;
  partitionsConsumedConcurrently?: number;
  /** Users or networks per script call; 1 on Redis Cluster. */
  basesPerScript?: number;
  liftConcurrency?: number;
  /** Run the lift worker and the spray monitor here (default true). */
  background?: boolean;
}

/** Store settings (ms) from the rules (seconds). */
export function lockoutStoreSettings(rules: LockoutRules, basesPerCall = 64): LockoutStoreSettings {
  const ms = (seconds: number) => Math.round(seconds * 1000);
  return {
    pairWindowMs: ms(rules.userIp.windowSeconds),
    userSourcesWindowMs: ms(rules.user.windowSeconds),
    sourceWindowMs: ms(rules.source.windowSeconds),
    // Counts saturate here; every threshold is far below.
    windowCap:
      10 *
      Math.max(
        rules.userIp.failures,
        rules.user.distinctSources,
        rules.source.networkDistinctUsers,
        rules.source.ipDistinctUsers,
        100,
      ),
    streakTtlMs: ms(rules.hardLock.streakMemorySeconds),
    streakCap: 10 * rules.hardLock.consecutiveFailures,
    pendingTtlMs: ms(rules.knownNetworks.pendingSeconds),
    knownMax: rules.knownNetworks.max,
    knownTtlMs: ms(rules.knownNetworks.ttlSeconds),
    spray: {
      windowMs: ms(rules.spray.windowSeconds),
      bucketMs: Math.max(ms(rules.spray.windowSeconds) / 20, 1),
      baselineWindows: rules.spray.baselineWindows,
    },
    claimTtlMs: ms(Math.max(rules.hardLock.maxLockSeconds, rules.source.maxBlockSeconds, 86_400) * 2),
    gates: {
      streak: rules.hardLock.consecutiveFailures,
      sources: rules.user.distinctSources,
      pair: rules.userIp.failures,
      ipUsers: rules.source.ipDistinctUsers,
      networkUsers: rules.source.networkDistinctUsers,
    },
    basesPerCall,
    eventsPerCall: 400,
  };
}

/**
 * The lockout detector: consumes failures and successes from the login and 2fa topics,
 * counts them in sliding windows in Redis, imposes lockouts and publishes them on the
 * security topic; lifts them at expiry (BullMQ) and watches for password spraying.
 */
export function buildLockoutDetector(deps: LockoutDetectorDeps) {
  const clock = deps.clock ?? Date.now;
  const logger = deps.logger.child({ component: 'lockout-detector' });
  const metrics = createLockoutMetrics(deps.metrics.registry);
  const rulesSource = createLockoutRulesSource({
    base: deps.rules ?? DEFAULT_LOCKOUT_RULES,
    ...(deps.policy ? { policy: deps.policy } : {}),
    logger,
    ...(deps.policyRefreshMs ? { refreshMs: deps.policyRefreshMs } : {}),
  });
  const rules = rulesSource.current;
  // Store settings follow the rules in force (recomputed when they change).
  let settings = { of: rules(), value: lockoutStoreSettings(rules(), deps.basesPerScript) };
  const store = createLockoutStore(deps.redis, deps.keyPrefix, () => {
    const current = rules();
    if (settings.of !== current)
      settings = { of: current, value: lockoutStoreSettings(current, deps.basesPerScript) };
    return settings.value;
  });
  const background = deps.background ?? true;
  const lifts = createLockoutLifts({
    redisUrl: deps.redisUrl,
    prefix: deps.keyPrefix,
    store,
    producer: deps.producer,
    metrics,
    logger,
    clock,
    concurrency: deps.liftConcurrency ?? 8,
    work: background,
  });
  const spray = createSprayMonitor({ store, producer: deps.producer, rules, metrics, logger, clock });
  const consumer = createBatchConsumer({
    kafka: deps.kafka,
    groupId: deps.groupId,
    roles: ['login', 'secondFactor'],
    producer: deps.producer,
    logger: deps.logger,
    metrics: deps.metrics,
    partitionsConsumedConcurrently: deps.partitionsConsumedConcurrently ?? 4,
    handle: createLockoutHandler({
      store,
      producer: deps.producer,
      lifts: lifts.scheduler,
      rules,
      metrics,
      logger,
      clock,
    }),
  });

  let stopping: Promise<void> | undefined;
  return {
    store,
    /** The rules in force now. */
    rules,
    async start(): Promise<void> {
      // The policy is read before the first event is counted (or the env rules apply if it cannot be).
      await rulesSource.start();
      await consumer.start();
      if (background) {
        lifts.start();
        spray.start();
      }
    },
    /** Finishes the batch in flight, then stops the spray monitor and the lift worker. */
    stop(): Promise<void> {
      stopping ??= (async () => {
        const steps: [string, () => Promise<void>][] = [
          ['consumer', () => consumer.stop()],
          ['spray monitor', () => spray.stop()],
          ['lifts', () => lifts.close()],
          ['rules', () => rulesSource.stop()],
        ];
        for (const [name, step] of steps) {
          await step().catch((err: unknown) => logger.error({ err, step: name }, 'stop step failed'));
        }
      })();
      return stopping;
    },
    /** Runs one spray assessment now. */
    assessSpray: () => spray.evaluate(),
    async readiness() {
      return {
        kafka: consumer.isReady() && deps.producer.isConnected(),
        redis: await pingRedis(deps.redis),
        lifts: lifts.isRunning(),
      };
    },
  };
}
export type LockoutDetector = ReturnType<typeof buildLockoutDetector>;
