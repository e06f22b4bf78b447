// A second single-node KRaft broker from the same jars as the local stack's
// (.cache/kafka/libs), with its own config, ports and data folder under a temporary
// directory, for tests that restart the broker: never the shared one.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from '../../support/services.js';
import { REPO_ROOT } from '../../support/stack.js';
import { waitForPort } from './private-redis.js';

const run = promisify(execFile);

export class PrivateKafka {
  readonly dir = mkdtempSync(join(tmpdir(), 'twofold-kafka-'));
  port = 0;
  controllerPort = 0;
  private child: ChildProcess | undefined;

  get brokers(): string {
    return `127.0.0.1:${this.port}`;
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
    this.port = await freePort();
    this.controllerPort = await freePort();
    const base = readFileSync(`${REPO_ROOT}deploy/local/kafka/server.properties`, 'utf8')
      .split('\n')
      .filter((l) => !/^(controller\.quorum\.voters|listeners|advertised\.listeners|log\.dirs)=/.test(l));
    writeFileSync(
      join(this.dir, 'server.properties'),
      [
        ...base,
        `controller.quorum.voters=1@127.0.0.1:${this.controllerPort}`,
        `listeners=PLAINTEXT://127.0.0.1:${this.port},CONTROLLER://127.0.0.1:${this.controllerPort}`,
        `advertised.listeners=PLAINTEXT://127.0.0.1:${this.port}`,
        `log.dirs=${join(this.dir, 'data')}`,
        '',
      ].join('\n'),
    );
    const { stdout } = await run('java', this.java('kafka.tools.StorageTool', ['random-uuid']));
    await run(
      'java',
      this.java('kafka.tools.StorageTool', [
        'format',
        '-t',
        stdout.trim(),
        '-c',
        join(this.dir, 'server.properties'),
      ]),
      { timeout: 120_000 },
    );
  }

  async start(): Promise<void> {
    this.child = spawn('java', this.java('kafka.Kafka', [join(this.dir, 'server.properties')]), {
      stdio: ['ignore', 'ignore', 'ignore'],
    });
    await waitForPort(this.port, true, 90_000, 'private kafka');
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
