// A second single-node KRaft broker from the same jars as the local stack's
// (.cache/kafka/libs), with its own config, ports and data folder under a temporary
// directory, for tests that restart the broker: never the shared one.
//
// With `secure`, it also offers what managed Kafka (MSK, Confluent Cloud, Aiven) asks of
// clients: a SASL_PLAINTEXT and a SASL_SSL listener, each taking PLAIN, SCRAM-SHA-256 and
// SCRAM-SHA-512 for one user (a password of its own per mechanism, so a client that speaks
// another mechanism than it was told to is refused), the TLS one with a certificate (SAN
// IP:127.0.0.1, DNS:localhost) from a CA made for this broker (`caFile`, PEM). The PLAINTEXT
// listener (`port`, inter-broker) and the controller's stay plain text. The broker's output
// goes to `logFile`, in the temporary folder.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import {
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from '../../support/services.js';
import { REPO_ROOT } from '../../support/stack.js';
import { waitForPort } from './private-redis.js';

const run = promisify(execFile);

export type PrivateKafkaMechanism = 'plain' | 'scram-sha-256' | 'scram-sha-512';

/**
 * The one SASL user of a secure broker and its password for each mechanism: letters, digits,
 * `.`, `_`, `-` (the JAAS config and --add-scram take them unquoted).
 */
export interface PrivateKafkaUser {
  readonly username: string;
  readonly passwords: Readonly<Record<PrivateKafkaMechanism, string>>;
}

export interface PrivateKafkaOptions {
  /** Adds the SASL_PLAINTEXT and SASL_SSL listeners, for this user. */
  readonly secure?: PrivateKafkaUser;
}

export class PrivateKafka {
  readonly dir = mkdtempSync(join(tmpdir(), 'twofold-kafka-'));
  port = 0;
  controllerPort = 0;
  /** SASL_PLAINTEXT listener (0 unless `secure`). */
  saslPort = 0;
  /** SASL_SSL listener (0 unless `secure`). */
  saslSslPort = 0;
  private child: ChildProcess | undefined;

  constructor(private readonly options: PrivateKafkaOptions = {}) {
    const user = options.secure;
    if (user && ![user.username, ...Object.values(user.passwords)].every((s) => /^[\w.-]+$/.test(s)))
      throw new Error(
        'PrivateKafka: the SASL user name and password take only letters, digits, ".", "_", "-"',
      );
  }

  get brokers(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** The SASL_PLAINTEXT listener, as KAFKA_BROKERS. */
  get saslBrokers(): string {
    return `127.0.0.1:${this.saslPort}`;
  }

  /** The SASL_SSL listener, as KAFKA_BROKERS. */
  get saslSslBrokers(): string {
    return `127.0.0.1:${this.saslSslPort}`;
  }

  /** PEM of the CA that signed the broker's certificate, as KAFKA_SSL_CA_FILE. */
  get caFile(): string {
    return join(this.dir, 'tls', 'ca.pem');
  }

  /** The broker's stdout and stderr, every start appended. */
  get logFile(): string {
    return join(this.dir, 'broker.log');
  }

  private java(mainClass: string, args: string[]): string[] {
    return [
      '-Xms128m',
      '-Xmx512m',
      '-XX:+UseG1GC',
      `-Dlog4j2.configurationFile=${REPO_ROOT}deploy/local/kafka/log4j2.yaml`,
      '-cp',
      `${REPO_ROOT}.cache/kafka/libs/*`,
      mainClass,
      ...args,
    ];
  }

  /** Writes the config (the stack's, with private ports and folder) and formats the storage. */
  async create(): Promise<void> {
    const user = this.options.secure;
    this.port = await freePort();
    this.controllerPort = await freePort();
    if (user) {
      this.saslPort = await freePort();
      this.saslSslPort = await freePort();
    }
    const base = readFileSync(`${REPO_ROOT}deploy/local/kafka/server.properties`, 'utf8')
      .split('\n')
      .filter(
        (l) =>
          !/^(controller\.quorum\.voters|listeners|advertised\.listeners|log\.dirs)=/.test(l) &&
          !(user && l.startsWith('listener.security.protocol.map=')),
      );
    const listeners = [`PLAINTEXT://127.0.0.1:${this.port}`];
    if (user)
      listeners.push(
        `SASL_PLAINTEXT://127.0.0.1:${this.saslPort}`,
        `SASL_SSL://127.0.0.1:${this.saslSslPort}`,
      );
    writeFileSync(
      join(this.dir, 'server.properties'),
      [
        ...base,
        `controller.quorum.voters=1@127.0.0.1:${this.controllerPort}`,
        `listeners=${listeners.join(',')},CONTROLLER://127.0.0.1:${this.controllerPort}`,
        `advertised.listeners=${listeners.join(',')}`,
        `log.dirs=${join(this.dir, 'data')}`,
        ...(user ? await this.securityProperties(user) : []),
        '',
      ].join('\n'),
    );
    const { stdout } = await run('java', this.java('kafka.tools.StorageTool', ['random-uuid']));
    // SCRAM credentials live in the cluster metadata: in KRaft they are written at format time.
    const scram = user
      ? (['scram-sha-256', 'scram-sha-512'] as const).flatMap((mechanism) => [
          '--add-scram',
          `${mechanism.toUpperCase()}=[name=${user.username},password=${user.passwords[mechanism]}]`,
        ])
      : [];
    await run(
      'java',
      this.java('kafka.tools.StorageTool', [
        'format',
        '-t',
        stdout.trim(),
        '-c',
        join(this.dir, 'server.properties'),
        ...scram,
      ]),
      { timeout: 120_000 },
    );
  }

  /** The CA, the broker's PKCS12 keystore, and the listeners' TLS and SASL properties. */
  private async securityProperties(user: PrivateKafkaUser): Promise<string[]> {
    const tls = join(this.dir, 'tls');
    mkdirSync(tls);
    const file = (name: string) => join(tls, name);
    const storePassword = 'twofold-test-store';
    await run('openssl', [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-days',
      '2',
      '-subj',
      '/CN=twofold test CA',
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
      '-keyout',
      file('ca.key'),
      '-out',
      this.caFile,
    ]);
    await run('openssl', [
      'req',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-subj',
      '/CN=localhost',
      '-keyout',
      file('broker.key'),
      '-out',
      file('broker.csr'),
    ]);
    writeFileSync(
      file('broker.ext'),
      [
        'basicConstraints=CA:FALSE',
        'keyUsage=critical,digitalSignature,keyEncipherment',
        'extendedKeyUsage=serverAuth',
        'subjectAltName=IP:127.0.0.1,DNS:localhost',
        '',
      ].join('\n'),
    );
    await run('openssl', [
      'x509',
      '-req',
      '-days',
      '2',
      '-in',
      file('broker.csr'),
      '-CA',
      this.caFile,
      '-CAkey',
      file('ca.key'),
      '-CAcreateserial',
      '-extfile',
      file('broker.ext'),
      '-out',
      file('broker.pem'),
    ]);
    await run('openssl', [
      'pkcs12',
      '-export',
      '-name',
      'broker',
      '-in',
      file('broker.pem'),
      '-inkey',
      file('broker.key'),
      '-certfile',
      this.caFile,
      '-passout',
      `pass:${storePassword}`,
      '-out',
      file('broker.p12'),
    ]);
    const mechanisms = ['plain', 'scram-sha-256', 'scram-sha-512'];
    const jaas = (mechanism: string) =>
      mechanism === 'plain'
        ? `org.apache.kafka.common.security.plain.PlainLoginModule required user_${user.username}="${user.passwords.plain}";`
        : 'org.apache.kafka.common.security.scram.ScramLoginModule required;';
    return [
      'listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL',
      'sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512',
      ...['sasl_plaintext', 'sasl_ssl'].flatMap((listener) =>
        mechanisms.map((m) => `listener.name.${listener}.${m}.sasl.jaas.config=${jaas(m)}`),
      ),
      `ssl.keystore.location=${file('broker.p12')}`,
      'ssl.keystore.type=PKCS12',
      `ssl.keystore.password=${storePassword}`,
      `ssl.key.password=${storePassword}`,
    ];
  }

  async start(): Promise<void> {
    const out = openSync(this.logFile, 'a');
    let child: ChildProcess;
    try {
      child = spawn('java', this.java('kafka.Kafka', [join(this.dir, 'server.properties')]), {
        stdio: ['ignore', out, out],
      });
    } finally {
      closeSync(out);
    }
    this.child = child;
    // A broker that exits (a bad property) fails the start at once, with the end of its log.
    const exited = once(child, 'exit').then(([code, signal]) => {
      throw new Error(
        `private kafka exited (${String(code ?? signal)}) while starting; ${this.logFile} ends:\n${this.logTail()}`,
      );
    });
    const ports = [this.port, this.saslPort, this.saslSslPort].filter((p) => p > 0);
    const listening = Promise.all(ports.map((p) => waitForPort(p, true, 90_000, 'private kafka')));
    // Whichever loses the race is settled later, with nobody waiting for it.
    exited.catch(() => undefined);
    listening.catch(() => undefined);
    await Promise.race([listening, exited]);
  }

  private logTail(): string {
    return existsSync(this.logFile)
      ? readFileSync(this.logFile, 'utf8').split('\n').slice(-40).join('\n')
      : '';
  }

  /** SIGTERM (a clean broker shutdown) or SIGKILL (a crash). */
  async stop(signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM'): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    child.kill(signal);
    await once(child, 'exit');
    await waitForPort(this.port, false, 30_000, 'private kafka');
  }

  async destroy(): Promise<void> {
    await this.stop('SIGKILL').catch(() => undefined);
    rmSync(this.dir, { recursive: true, force: true });
  }
}
