import { pino, type Logger, type LoggerOptions } from 'pino';

export type { Logger };

/**
 * Paths never written to a log: codes, secrets, tokens, passwords and credentials.
 * Explicit paths rather than wildcards (pino's wildcard redaction is slow on hot paths).
 */
export const REDACTED_PATHS = [
  'code',
  'secret',
  'token',
  'password',
  'key',
  'backupCodes',
  'authorization',
  'body.code',
  'body.secret',
  'body.token',
  'body.password',
  'body.backupCodes',
  'data.code',
  'data.secret',
  'data.token',
  'headers.authorization',
  'headers.cookie',
  'headers["x-twofold-session"]',
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-twofold-session"]',
  'req.body.code',
  'req.body.secret',
  'config.adminKey',
  'config.masterKeys',
  'config.database.url',
  'config.kafka.sasl.password',
  'kafka.sasl.password',
  'sasl.password',
];

export interface LoggerSettings {
  service: string;
  level?: string;
  /** Where to write; defaults to stdout. Tests pass a stream to read what was logged. */
  destination?: pino.DestinationStream;
}

/** The one root logger of a process; components take `logger.child({ component })`. */
export function createLogger({ service, level = 'info', destination }: LoggerSettings): Logger {
  const options: LoggerOptions = {
    level,
    base: { service },
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  };
  return destination ? pino(options, destination) : pino(options);
}
