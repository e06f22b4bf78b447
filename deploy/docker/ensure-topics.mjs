// Creates the topics of the wire contract that do not exist yet, and leaves existing ones
// alone: the chart's pre-install/pre-upgrade hook and the compose file's one-shot run it from
// the twofold image (`node deploy/docker/ensure-topics.mjs`). It reads only Kafka settings.
import {
  ConfigError,
  hostPorts,
  kafkaSecurityEnvSpec,
  num,
  readEnv,
  str,
  toKafkaSecurity,
} from '@twofold/config';
import { topicCatalog } from '@twofold/contracts';
import { createKafka, ensureTopics, pingKafka } from '@twofold/kafka';
import { createLogger } from '@twofold/telemetry';

function fail(message) {
  process.stderr.write(`ensure-topics: ${message}\n`);
  process.exit(1);
}

let env;
let security;
try {
  env = readEnv({
    KAFKA_BROKERS: hostPorts({ desc: 'Kafka bootstrap servers, host:port[,host:port]' }),
    KAFKA_CLIENT_ID: str({ default: 'twofold' }),
    // TLS and SASL, validated as the services validate them.
    KAFKA_SSL: kafkaSecurityEnvSpec.KAFKA_SSL,
    KAFKA_SSL_CA_FILE: kafkaSecurityEnvSpec.KAFKA_SSL_CA_FILE,
    KAFKA_SASL_MECHANISM: kafkaSecurityEnvSpec.KAFKA_SASL_MECHANISM,
    KAFKA_SASL_USERNAME: kafkaSecurityEnvSpec.KAFKA_SASL_USERNAME,
    KAFKA_SASL_PASSWORD: kafkaSecurityEnvSpec.KAFKA_SASL_PASSWORD,
    TWOFOLD_TOPIC_PREFIX: str({ default: '' }),
    KAFKA_TOPIC_PARTITIONS: num({ default: 12 }),
    KAFKA_TOPIC_REPLICATION_FACTOR: num({ default: 1 }),
    KAFKA_WAIT_SECONDS: num({ default: 120 }),
    LOG_LEVEL: str({ default: 'warn' }),
  });
  security = toKafkaSecurity(env);
} catch (err) {
  fail(err instanceof ConfigError ? err.message : String(err));
}

// kafkajs logs every refused connection while the broker starts; this script reports its own
// failures, so the client stays quiet unless asked to debug.
const verbose = env.LOG_LEVEL === 'debug' || env.LOG_LEVEL === 'trace';
const logger = createLogger({ service: 'ensure-topics', level: verbose ? env.LOG_LEVEL : 'fatal' });
let kafka;
try {
  kafka = createKafka({
    brokers: env.KAFKA_BROKERS,
    clientId: `${env.KAFKA_CLIENT_ID}-topics`,
    logger,
    ...security,
  });
} catch (err) {
  // An unreadable KAFKA_SSL_CA_FILE.
  fail(err instanceof Error ? err.message : String(err));
}

// A broker that just started (compose) or a rolling broker restart: wait instead of failing.
const deadline = Date.now() + env.KAFKA_WAIT_SECONDS * 1000;
while (!(await pingKafka(kafka))) {
  if (Date.now() > deadline)
    fail(`no Kafka broker answered at ${env.KAFKA_BROKERS.join(',')} within ${env.KAFKA_WAIT_SECONDS} s`);
  await new Promise((resolve) => setTimeout(resolve, 2_000));
}

try {
  const created = await ensureTopics(kafka, topicCatalog(env.TWOFOLD_TOPIC_PREFIX), {
    partitions: env.KAFKA_TOPIC_PARTITIONS,
    replicationFactor: env.KAFKA_TOPIC_REPLICATION_FACTOR,
  });
  process.stdout.write(
    created.length
      ? `created topics (${env.KAFKA_TOPIC_PARTITIONS} partitions, replication ${env.KAFKA_TOPIC_REPLICATION_FACTOR}): ${created.join(', ')}\n`
      : 'every topic exists\n',
  );
} catch (err) {
  fail(`creating topics failed: ${err instanceof Error ? err.message : String(err)}`);
}
