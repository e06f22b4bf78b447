import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { kafkaConnectionOptions } from './client.js';

const PEM = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
const plain = { ssl: { enabled: false } };

describe('kafkaConnectionOptions', () => {
  it('leaves ssl and sasl out for a plain-text broker', () => {
    expect(kafkaConnectionOptions(plain)).toEqual({});
  });

  it("turns TLS on against Node's CAs when no CA file is given", () => {
    expect(kafkaConnectionOptions({ ssl: { enabled: true, caFile: undefined } })).toEqual({ ssl: true });
  });

  it('trusts only the CA file when one is given', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'kafka-ca-')), 'ca.crt');
    writeFileSync(file, PEM);
    expect(kafkaConnectionOptions({ ssl: { enabled: true, caFile: file } })).toEqual({ ssl: { ca: [PEM] } });
  });

  it('names KAFKA_SSL_CA_FILE when the file cannot be read or holds no certificate', () => {
    expect(() => kafkaConnectionOptions({ ssl: { enabled: true, caFile: '/nonexistent/ca.crt' } })).toThrow(
      /^KAFKA_SSL_CA_FILE: cannot read \/nonexistent\/ca\.crt: .*ENOENT/,
    );
    expect(() =>
      kafkaConnectionOptions({ ssl: { enabled: true, caFile: '/ca.crt' } }, () => 'not a pem'),
    ).toThrow('KAFKA_SSL_CA_FILE: /ca.crt holds no PEM certificate');
  });

  it.each(['plain', 'scram-sha-256', 'scram-sha-512'] as const)(
    'passes %s credentials as kafkajs sasl',
    (mechanism) => {
      expect(
        kafkaConnectionOptions({ ...plain, sasl: { mechanism, username: 'twofold', password: 's3cret' } }),
      ).toEqual({ sasl: { mechanism, username: 'twofold', password: 's3cret' } });
    },
  );

  it('combines TLS and SASL (managed Kafka: MSK, Confluent Cloud, Aiven)', () => {
    expect(
      kafkaConnectionOptions(
        {
          ssl: { enabled: true, caFile: '/ca.crt' },
          sasl: { mechanism: 'scram-sha-512', username: 'u', password: 'p' },
        },
        () => PEM,
      ),
    ).toEqual({ ssl: { ca: [PEM] }, sasl: { mechanism: 'scram-sha-512', username: 'u', password: 'p' } });
  });
});
