import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from './logger.js';

describe('createLogger redaction', () => {
  it('never writes the Kafka SASL password, however the config or its parts are logged', () => {
    const lines: string[] = [];
    const destination = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(chunk.toString());
        done();
      },
    });
    const logger = createLogger({ service: 'test', destination });
    const sasl = { mechanism: 'scram-sha-512', username: 'twofold', password: 'hunter2-kafka' };
    logger.info({ config: { kafka: { brokers: ['b:9096'], sasl } } }, 'config');
    logger.info({ kafka: { sasl } }, 'kafka');
    logger.info({ sasl }, 'sasl');
    const written = lines.join('');
    expect(lines).toHaveLength(3);
    expect(written).not.toContain('hunter2');
    expect(written).toContain('twofold');
  });
});
