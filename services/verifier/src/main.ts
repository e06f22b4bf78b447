import { loadOrExit } from '@twofold/config';
import { topicCatalog } from '@twofold/contracts';
import { createEventProducer, createKafka } from '@twofold/kafka';
import { createRedis } from '@twofold/redis';
import { createEnrollmentsRepository, createPolicyRepository, createPool } from '@twofold/store';
import { createPolicySnapshot } from '@twofold/verification';
import { readLockStates, readSession } from '@twofold/state';
import { createLoginStateReader } from './login-state.reader.js';
import {
  Gauge,
  createLogger,
  createServiceMetrics,
  consumerLiveness,
  createShutdown,
  startHealthServer,
  stopOnSignals,
  stopTracing,
} from '@twofold/telemetry';
import { loadVerifierConfig } from './config.js';
import { buildVerifier } from './verifier.js';

const config = loadOrExit(loadVerifierConfig, 'verifier');
const logger = createLogger({ service: 'verifier', level: config.logLevel });
const metrics = createServiceMetrics('verifier');
const kafka = createKafka({ ...config.kafka, logger });
const producer = createEventProducer(kafka, { topics: topicCatalog(config.kafka.topicPrefix), logger });
// Auto-pipelining: the commands a batch issues in one tick (session reads, lock reads, the
// challenges, the decisions) leave in one write instead of one write each (createRedis keeps
// scripts defined with defineCommand out of it: see libs/redis).
const redis = createRedis(config.redis.url, 'state', { enableAutoPipelining: true });
const pool = createPool({
  url: config.database.url,
  schema: config.database.schema,
  max: config.database.poolSize,
});

const state = createLoginStateReader({
  sessionsVerified: (logins) =>
    Promise.all(
      logins.map(async ({ session, username }) => {
        const current = await readSession(redis, config.redis.keyPrefix, session);
        return current.verified && current.username === username;
      }),
    ),
  locks: (logins) => readLockStates(redis, config.redis.keyPrefix, logins),
});

const policy = createPolicySnapshot({
  repository: createPolicyRepository(pool),
  logger,
  maxStalenessMs: config.policy.maxStalenessMs,
});
new Gauge({
  name: 'twofold_policy_age_seconds',
  help: 'Since the policy copy was last confirmed current; past POLICY_MAX_STALENESS_MS logins are challenged',
  registers: [metrics.registry],
  collect() {
    this.set(policy.ageMs() / 1000);
  },
});

const verifier = buildVerifier({
  kafka,
  producer,
  redis,
  pool,
  enrollments: createEnrollmentsRepository(pool),
  policy,
  state,
  logger,
  metrics,
  groupId: `${config.kafka.groupPrefix}twofold-verifier`,
  keyPrefix: config.redis.keyPrefix,
});

await producer.connect();
await verifier.start();
const health = await startHealthServer({
  port: config.metricsPort,
  host: config.metricsHost,
  registry: metrics.registry,
  readiness: verifier.readiness,
  // A consumer crashed without a restart fails /healthz: the kubelet restarts the pod.
  liveness: consumerLiveness(metrics),
  logger,
});
logger.info({ host: health.host, port: health.port }, 'verifier started');

stopOnSignals(
  createShutdown({
    logger,
    timeoutMs: config.shutdownTimeoutMs,
    steps: [
      { name: 'consumer', close: verifier.stop },
      { name: 'producer', close: producer.disconnect },
      { name: 'redis', close: () => redis.quit() },
      { name: 'postgres', close: () => pool.end() },
      { name: 'health', close: health.close },
      { name: 'tracing', close: stopTracing },
    ],
  }),
  logger,
);
