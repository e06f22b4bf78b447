// Kafka TLS and SASL against a real broker (Kafka 4.1, a private one: never the shared stack's):
// the settings read by the services' own config parser (loadCommonConfig, from an env object),
// the client made by createKafka, topics created by the admin, an event published by the event
// producer and read back through the batch consumer, over SASL_PLAINTEXT with PLAIN,
// SCRAM-SHA-256 and SCRAM-SHA-512 and over SASL_SSL with the broker's private CA. Then what
// must fail, and fail fast with a clear error: a wrong password, TLS without the CA, SASL
// without TLS against the TLS listener, no SASL against the SASL listener.
import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadCommonConfig } from '@twofold/config';
import { createEvent, topicCatalog, type AnyTwofoldEvent } from '@twofold/contracts';
import {
  createBatchConsumer,
  createEventProducer,
  createKafka,
  createKafkaPing,
  ensureTopics,
  type ConsumedEvent,
  type RawConsumed,
} from '@twofold/kafka';
import { createLogger, createServiceMetrics } from '@twofold/telemetry';
import { PrivateKafka } from '../reliability/support/private-kafka.js';
import { eventually, quietLogger } from '../support/stack.js';

const USER = 'twofold';
// A password per mechanism: a client that spoke PLAIN when told SCRAM would be refused.
const PASSWORDS = {
  plain: `plain-${randomBytes(12).toString('hex')}`,
  'scram-sha-256': `sha256-${randomBytes(12).toString('hex')}`,
  'scram-sha-512': `sha512-${randomBytes(12).toString('hex')}`,
};
type Mechanism = keyof typeof PASSWORDS;
const broker = new PrivateKafka({ secure: { username: USER, passwords: PASSWORDS } });
const logger = quietLogger();

beforeAll(async () => {
  await broker.create();
  await broker.start();
}, 180_000);
afterAll(() => broker.destroy());

/** Settings as a service reads them: loadCommonConfig over an env (Redis and Postgres unused here). */
function settingsFrom(env: Record<string, string>) {
  return loadCommonConfig('kafka-secure', {
    REDIS_URL: 'redis://127.0.0.1:1/0',
    DATABASE_URL: 'postgres://unused@127.0.0.1:1/unused',
    TWOFOLD_TOPIC_PREFIX: `t.secure-${randomUUID().slice(0, 8)}.`,
    ...env,
  }).kafka;
}

/** KAFKA_SASL_* for a mechanism (as written in the env: any case), with its password unless told another. */
const sasl = (mechanism: string, password = PASSWORDS[mechanism.toLowerCase() as Mechanism]) => ({
  KAFKA_SASL_MECHANISM: mechanism,
  KAFKA_SASL_USERNAME: USER,
  KAFKA_SASL_PASSWORD: password,
});

/** Every message of an error and of its causes (kafkajs wraps the socket's error). */
function messages(err: unknown): string {
  const parts: string[] = [];
  for (let e = err as { message?: string; cause?: unknown; originalError?: unknown } | undefined; e;) {
    if (e.message) parts.push(e.message);
    e = (e.cause ?? e.originalError) as typeof e;
  }
  return parts.join(' <- ');
}

/**
 * Connects an admin client made by createKafka from these settings, and answers the first
 * failure within 15 s: the error connect() throws (a refused login is not retried), or the
 * first error kafkajs logs (a connection error is retried by the client's own retry settings,
 * ~20 s, each attempt logged; the admin's `retry` does not cover the connection). `logs` is
 * everything the client logged meanwhile, as the services would log it.
 */
async function firstFailure(
  env: Record<string, string>,
): Promise<{ error: string; ms: number; logs: string }> {
  const lines: string[] = [];
  const kafka = createKafka({
    ...settingsFrom(env),
    logger: createLogger({
      service: 'kafka-secure-test',
      level: 'debug',
      destination: { write: (line: string) => void lines.push(line) },
    }),
  });
  const admin = kafka.admin({ retry: { retries: 0 } });
  const started = Date.now();
  const thrown = admin
    .connect()
    .then(() => admin.describeCluster())
    .then(
      () => 'connected, but it should have been refused',
      (err: unknown) => `${(err as Error).name}: ${messages(err)}`,
    );
  let settled = false;
  const logged = (async () => {
    while (!settled && Date.now() - started < 15_000) {
      const entry = lines
        .map((l) => JSON.parse(l) as { level: string; msg: string })
        .find((l) => l.level === 'error');
      if (entry) return `logged: ${entry.msg}`;
      await new Promise((r) => setTimeout(r, 20));
    }
    return 'no failure within 15 s';
  })();
  try {
    const error = await Promise.race([thrown, logged]);
    return { error, ms: Date.now() - started, logs: lines.join('') };
  } finally {
    settled = true;
    await admin.disconnect().catch(() => undefined);
  }
}

const roundTrips = [
  { name: 'PLAIN over SASL_PLAINTEXT', tls: false, env: sasl('plain') },
  { name: 'SCRAM-SHA-256 over SASL_PLAINTEXT', tls: false, env: sasl('scram-sha-256') },
  // Upper case, as the providers write it (MSK takes SCRAM-SHA-512 only).
  { name: 'SCRAM-SHA-512 over SASL_PLAINTEXT', tls: false, env: sasl('SCRAM-SHA-512') },
  // MSK (SASL/SCRAM) and Confluent Cloud (SASL/PLAIN) both over TLS.
  { name: 'SCRAM-SHA-512 over SASL_SSL with the CA file', tls: true, env: sasl('scram-sha-512') },
  { name: 'PLAIN over SASL_SSL with the CA file', tls: true, env: sasl('plain') },
];

describe('Kafka TLS and SASL against a real broker', () => {
  it.each(roundTrips)('$name: creates topics, publishes an event and reads it back', async ({ tls, env }) => {
    const config = settingsFrom({
      KAFKA_BROKERS: tls ? broker.saslSslBrokers : broker.saslBrokers,
      ...(tls ? { KAFKA_SSL: 'true', KAFKA_SSL_CA_FILE: broker.caFile } : {}),
      ...env,
    });
    expect(config.sasl?.username).toBe(USER);
    expect(config.ssl.enabled).toBe(tls);
    const kafka = createKafka({ ...config, logger });
    const topics = topicCatalog(config.topicPrefix);
    expect(await ensureTopics(kafka, topics, { partitions: 1 })).toHaveLength(Object.keys(topics).length);

    const producer = createEventProducer(kafka, { topics, logger });
    const received: ConsumedEvent[] = [];
    const raw: RawConsumed[] = [];
    const consumer = createBatchConsumer({
      kafka,
      groupId: `${config.topicPrefix}reader`,
      roles: ['login', 'dlq'],
      producer,
      logger,
      metrics: createServiceMetrics('kafka-secure-test'),
      handle: async (events) => void received.push(...events),
      handleDlq: async (items) => void raw.push(...items),
    });
    const event = createEvent('twofold.login.failed', 'app/jira', `secure-user-${randomUUID()}`, {
      appId: 'jira',
      ip: '192.0.2.1',
      reason: 'bad_password',
    });
    // Bytes no JSON parser touches, through the raw path (the DLQ's).
    const bytes = randomBytes(64);
    try {
      await producer.connect();
      await producer.publish('login', [event]);
      await producer.sendRaw(topics.dlq, [{ key: 'raw', value: bytes }]);
      await consumer.start();
      await eventually(
        async () => (received.length > 0 && raw.length > 0 ? true : undefined),
        20_000,
        'the event and the raw message to be consumed',
      );
    } finally {
      await consumer.stop();
      await producer.disconnect();
    }
    expect(received).toHaveLength(1);
    expect(received[0]!.event).toEqual(event as AnyTwofoldEvent);
    expect(received[0]!.key).toBe(event.subject);
    expect(received[0]!.topic).toBe(topics.login);
    expect(raw).toHaveLength(1);
    expect(Buffer.compare(raw[0]!.message.value!, bytes)).toBe(0);
    expect(raw[0]!.message.key?.toString()).toBe('raw');
  });

  describe('the readiness ping of the api', () => {
    it('answers ready with the right credentials over TLS, and not ready at once with a wrong password', async () => {
      const good = createKafkaPing(
        createKafka({
          ...settingsFrom({
            KAFKA_BROKERS: broker.saslSslBrokers,
            KAFKA_SSL: 'true',
            KAFKA_SSL_CA_FILE: broker.caFile,
            ...sasl('scram-sha-512'),
          }),
          logger,
        }),
        { timeoutMs: 10_000 },
      );
      const bad = createKafkaPing(
        createKafka({
          ...settingsFrom({
            KAFKA_BROKERS: broker.saslSslBrokers,
            KAFKA_SSL: 'true',
            KAFKA_SSL_CA_FILE: broker.caFile,
            ...sasl('scram-sha-512', `${PASSWORDS['scram-sha-512']}-wrong`),
          }),
          logger,
        }),
        { timeoutMs: 10_000 },
      );
      try {
        expect(await good.ping()).toBe(true);
        const started = Date.now();
        expect(await bad.ping()).toBe(false);
        // Refused by the broker, not timed out by the ping.
        expect(Date.now() - started).toBeLessThan(5_000);
      } finally {
        await good.close();
        await bad.close();
      }
    });
  });

  describe('what must fail', () => {
    // The error names the mechanism the client spoke (and for SCRAM, the broker confirms it).
    it.each([
      {
        mechanism: 'plain',
        refusal:
          /^KafkaJSSASLAuthenticationError: SASL PLAIN authentication failed: .*Invalid username or password/,
      },
      {
        mechanism: 'scram-sha-256',
        refusal:
          /^KafkaJSSASLAuthenticationError: SASL SCRAM SHA256 authentication failed: .*invalid credentials with SASL mechanism SCRAM-SHA-256/,
      },
      {
        mechanism: 'scram-sha-512',
        refusal:
          /^KafkaJSSASLAuthenticationError: SASL SCRAM SHA512 authentication failed: .*invalid credentials with SASL mechanism SCRAM-SHA-512/,
      },
    ])(
      'a wrong password ($mechanism) is refused at once with a SASL authentication error, not retried, never logged',
      async ({ mechanism, refusal }) => {
        const wrong = `${PASSWORDS[mechanism as Mechanism]}-wrong`;
        const { error, ms, logs } = await firstFailure({
          KAFKA_BROKERS: broker.saslBrokers,
          ...sasl(mechanism, wrong),
        });
        expect(error).toMatch(refusal);
        expect(ms).toBeLessThan(5_000);
        // The client logged the refusal, and not the password.
        expect(logs).toMatch(/authentication failed/i);
        expect(logs).not.toContain(wrong);
      },
    );

    it('TLS without the CA file fails certificate verification (Node does not know the private CA)', async () => {
      const { error, ms } = await firstFailure({
        KAFKA_BROKERS: broker.saslSslBrokers,
        KAFKA_SSL: 'true',
        ...sasl('scram-sha-512'),
      });
      expect(error).toMatch(/self-signed certificate in certificate chain/);
      expect(ms).toBeLessThan(5_000);
    });

    it('SASL without KAFKA_SSL against the SASL_SSL listener fails', async () => {
      const { error, ms } = await firstFailure({
        KAFKA_BROKERS: broker.saslSslBrokers,
        ...sasl('scram-sha-512'),
      });
      expect(error).toMatch(/closed connection/i);
      expect(ms).toBeLessThan(5_000);
    });

    it('no SASL against the SASL_PLAINTEXT listener fails (so the round trips above did use SASL)', async () => {
      const { error, ms } = await firstFailure({ KAFKA_BROKERS: broker.saslBrokers });
      expect(error).toMatch(/closed connection/i);
      expect(ms).toBeLessThan(5_000);
    });
  });
});
