import { Kafka, logLevel, type LogEntry } from 'kafkajs';
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

/** The Kafka client, logging through the service's pino logger. */
export function createKafka(options: {
  brokers: readonly string[];
  clientId: string;
  logger: Logger;
}): Kafka {
  const kafkaLogger = options.logger.child({ component: 'kafkajs' });
  return new Kafka({
    clientId: options.clientId,
    brokers: [...options.brokers],
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
