import { createNetworkDenylist, loadOrExit } from '@twofold/config';
import { topicCatalog } from '@twofold/contracts';
import { createEventProducer, createKafka, createKafkaPing } from '@twofold/kafka';
import { createRedis, pingRedis } from '@twofold/redis';
import { createSecretKeyRing } from '@twofold/otp';
import { CHALLENGE_MAX_ATTEMPTS, createChallengeStore, createDecisionStore } from '@twofold/state';
import { createSessionEventFeed, createWebhookDeadLetters } from '@twofold/state';
import {
  createAppsRepository,
  createEnrollmentsRepository,
  createPolicyRepository,
  createPool,
  pingPostgres,
} from '@twofold/store';
import { createCodeVerifier, createEnrollmentService, createPolicySnapshot } from '@twofold/verification';
import { readLockForVerification } from './lock-reader.js';
import {
  createLogger,
  createServiceMetrics,
  createShutdown,
  listenWithIpv4Fallback,
  stopOnSignals,
  stopTracing,
} from '@twofold/telemetry';
import { buildApi } from './app.js';
import { createAuthenticator } from './auth.js';
import { loadApiConfig } from './config.js';
import { createDecisionWaiter } from './decision-waiter.js';

const config = loadOrExit(loadApiConfig, 'api');
const logger = createLogger({ service: 'api', level: config.logLevel });
const metrics = createServiceMetrics('api');
const kafka = createKafka({ ...config.kafka, logger });
const producer = createEventProducer(kafka, { topics: topicCatalog(config.kafka.topicPrefix), logger });
// Readiness asks Kafka on one kept connection, answering within 2 s.
const kafkaPing = createKafkaPing(kafka);
// Auto-pipelined: the commands of concurrent requests share one socket write (verifier
// bench, 64 connections: Redis CPU per verification −30 %). Blocking reads and the
// subscriber have clients of their own.
const redis = createRedis(config.redis.url, 'state', { enableAutoPipelining: true });
// Subscriber mode refuses the ready check's INFO; an error listener keeps a hiccup from crashing the process.
const subscriber = createRedis(config.redis.url, 'queue', { enableReadyCheck: false });
subscriber.on('error', (err) => logger.warn({ err }, 'decision subscriber connection error'));
const pool = createPool({
  url: config.database.url,
  schema: config.database.schema,
  max: config.database.poolSize,
});
const apps = createAppsRepository(pool);
const decisions = createDecisionStore(redis, config.redis.keyPrefix);
const waiter = createDecisionWaiter({ subscriber, decisions, keyPrefix: config.redis.keyPrefix });
const keyRing = createSecretKeyRing(config.secrets.masterKeys, config.secrets.activeKeyId);
const enrollments = createEnrollmentsRepository(pool);
const challenges = createChallengeStore(redis, config.redis.keyPrefix);
const policies = createPolicyRepository(pool);
const policySnapshot = createPolicySnapshot({ repository: policies, logger });
const codeVerifier = createCodeVerifier({
  challenges,
  enrollments,
  keyRing,
  redis,
  keyPrefix: config.redis.keyPrefix,
  producer,
  readLock: readLockForVerification(redis, config.redis.keyPrefix),
  window: config.totpWindow,
  maxAttempts: CHALLENGE_MAX_ATTEMPTS,
});
const enrollment = createEnrollmentService({
  enrollments,
  keyRing,
  redis,
  keyPrefix: config.redis.keyPrefix,
  producer,
  window: config.totpWindow,
});
// Session events (SSE) follow the broadcaster's stream on a connection of their own (XREAD BLOCK).
const sessionFeed = createSessionEventFeed({
  reader: createRedis(config.redis.url, 'queue'),
  redis,
  prefix: config.redis.keyPrefix,
  onError: (err) => logger.warn({ err }, 'reading the session event stream failed; retrying'),
});
const deadLetters = createWebhookDeadLetters({ redisUrl: config.redis.url, prefix: config.redis.keyPrefix });

const auth = createAuthenticator({
  apps,
  adminKey: config.adminKey,
  onRefreshError: (err) =>
    logger.warn({ err }, 'reading the apps version failed; app keys are kept up to 30 s'),
});
const app = await buildApi({
  pool,
  logger,
  metrics,
  producer,
  apps,
  auth,
  waiter,
  publicUrl: config.http.publicUrl,
  challenges,
  codeVerifier,
  enrollment,
  policies,
  policySnapshot,
  limits: { rates: config.rateLimits, redis, keyPrefix: config.redis.keyPrefix },
  sessions: { redis, keyPrefix: config.redis.keyPrefix, feed: sessionFeed, deadLetters },
  lockouts: { redis, keyPrefix: config.redis.keyPrefix },
  webhookDenylist: createNetworkDenylist(config.webhookDeniedNetworks),
  readiness: async () => ({
    kafka: producer.isConnected() && (await kafkaPing.ping()),
    redis: await pingRedis(redis),
    postgres: await pingPostgres(pool),
  }),
});

await producer.connect();
await waiter.start();
await policySnapshot.start();
await auth.start();
await sessionFeed.start();
// A deep accept queue: with Node's default (511), a burst of a few dozen connections (an
// app's pool opening, a load balancer's) overflowed it on our Linux test machines, and each
// dropped SYN is retried by the client only after 1 s. The kernel caps it at somaxconn.
// '::' (the default) falls back to 0.0.0.0 where the host has no IPv6, as the probe servers do.
await listenWithIpv4Fallback(
  async (host) => {
    await app.listen({ port: config.http.port, host, backlog: 4096 });
  },
  config.http.host,
  logger,
);

stopOnSignals(
  createShutdown({
    logger,
    timeoutMs: config.shutdownTimeoutMs,
    steps: [
      { name: 'http', close: () => app.close() },
      { name: 'session events', close: () => Promise.all([sessionFeed.stop(), deadLetters.close()]) },
      { name: 'policy', close: policySnapshot.stop },
      { name: 'app keys', close: auth.stop },
      { name: 'producer', close: () => Promise.all([producer.disconnect(), kafkaPing.close()]) },
      { name: 'redis', close: () => Promise.all([redis.quit(), waiter.stop()]) },
      { name: 'postgres', close: () => pool.end() },
      { name: 'tracing', close: stopTracing },
    ],
  }),
  logger,
);
