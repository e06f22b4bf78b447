import { readFileSync } from 'node:fs';
import { Kafka, logLevel, type KafkaConfig, type LogEntry, type SASLOptions } from 'kafkajs';
import type { Logger } from '@twofold/telemetry';

export type { Kafka };
/** Encodes partition assignments and member metadata, for a custom partition assigner. */
export { AssignerProtocol } from 'kafkajs';

const levelNames: Record<number, 'error' | 'warn' | 'info' | 'debug'> = {
  [logLevel.ERROR]: 'error',
  [logLevel.WARN]: 'warn',
  [logLevel.INFO]: 'info',
  [logLevel.DEBUG]: 'debug',
};

/** TLS and SASL settings, as libs/config reads them (KAFKA_SSL*, KAFKA_SASL_*). */
export interface KafkaSecuritySettings {
  readonly ssl: { readonly enabled: boolean; readonly caFile?: string | undefined };
  readonly sasl?:
    | {
        readonly mechanism: 'plain' | 'scram-sha-256' | 'scram-sha-512';
        readonly username: string;
        readonly password: string;
      }
    | undefined;
}

/** The connection options of a kafkajs client: `ssl` and `sasl`, each left out when off. */
export interface KafkaConnectionOptions {
  ssl?: KafkaConfig['ssl'];
  sasl?: SASLOptions;
}

/**
 * kafkajs `ssl` / `sasl` options from the settings: `ssl: true` verifies the brokers against
 * Node's CAs, `ssl: { ca }` against the CA file's bundle only (certificate and host name are
 * checked either way). `readFile` reads the CA file; a file that cannot be read is an error
 * naming KAFKA_SSL_CA_FILE, at start-up rather than at the first connection.
 */
export function kafkaConnectionOptions(
  settings: KafkaSecuritySettings,
  readFile: (path: string) => string = (path) => readFileSync(path, 'utf8'),
): KafkaConnectionOptions {
  const options: KafkaConnectionOptions = {};
  if (settings.ssl.enabled) {
    const caFile = settings.ssl.caFile;
    if (caFile) {
      let ca: string;
      try {
        ca = readFile(caFile);
      } catch (err) {
        throw new Error(`KAFKA_SSL_CA_FILE: cannot read ${caFile}: ${(err as Error).message}`, {
          cause: err,
        });
      }
      if (!ca.includes('-----BEGIN CERTIFICATE-----'))
        throw new Error(
          `KAFKA_SSL_CA_FILE: ${caFile} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`,
        );
      options.ssl = { ca: [ca] };
    } else {
      options.ssl = true;
    }
  }
  const sasl = settings.sasl;
  if (sasl) {
    // One literal per mechanism: kafkajs types SASLOptions as a union keyed by mechanism.
    const { username, password } = sasl;
    options.sasl =
      sasl.mechanism === 'plain'
        ? { mechanism: 'plain', username, password }
        : sasl.mechanism === 'scram-sha-256'
          ? { mechanism: 'scram-sha-256', username, password }
          : { mechanism: 'scram-sha-512', username, password };
  }
  return options;
}

/**
 * The Kafka client, logging through the service's pino logger. `ssl` and `sasl` are the
 * settings as libs/config reads them (plain text when absent), so a caller passes its
 * `config.kafka` as it is; a CA file that cannot be read throws here, at start-up.
 */
export function createKafka(
  options: {
    brokers: readonly string[];
    clientId: string;
    logger: Logger;
  } & Partial<KafkaSecuritySettings>,
): Kafka {
  const kafkaLogger = options.logger.child({ component: 'kafkajs' });
  return new Kafka({
    clientId: options.clientId,
    brokers: [...options.brokers],
    ...kafkaConnectionOptions({ ssl: options.ssl ?? { enabled: false }, sasl: options.sasl }),
    connectionTimeout: 3_000,
    requestTimeout: 30_000,
    retry: { initialRetryTime: 100, maxRetryTime: 5_000, retries: 8 },
    logLevel: logLevel.WARN,
    logCreator:
      () =>
      ({ level, log }: LogEntry) => {
        const { message, ...extra } = log;
        kafkaLogger[levelNames[level] ?? 'info'](extra, message);
      },
  });
}
