// A throwaway redis-server on a free port, for tests that stop Redis: never the shared one.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:net';
import { freePort } from '../../support/services.js';

const portOpen = (port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });

export async function waitForPort(
  port: number,
  open: boolean,
  timeoutMs = 30_000,
  what = 'port',
): Promise<void> {
  const until = Date.now() + timeoutMs;
  while ((await portOpen(port)) !== open) {
    if (Date.now() > until)
      throw new Error(`${what} ${port} did not ${open ? 'open' : 'close'} in ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export class PrivateRedis {
  readonly dir = mkdtempSync(join(tmpdir(), 'twofold-redis-'));
  port = 0;
  private child: ChildProcess | undefined;

  /** `persist`: every write appended and fsynced (AOF), so a restart keeps the state. */
  constructor(private readonly options: { persist?: boolean } = {}) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** Starts the server (on the same port after a stop). */
  async start(): Promise<void> {
    this.port ||= await freePort();
    this.child = spawn(
      'redis-server',
      [
        '--port',
        String(this.port),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        this.options.persist ? 'yes' : 'no',
        '--appendfsync',
        'always',
        '--dir',
        this.dir,
      ],
      { stdio: 'ignore' },
    );
    await waitForPort(this.port, true, 20_000, 'private redis');
  }

  /** Stops it hard (SIGKILL: as a crash or a network cut looks to clients); state is lost unless `persist`. */
  async stop(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGKILL');
    await once(child, 'exit');
    await waitForPort(this.port, false, 10_000, 'private redis');
  }

  async destroy(): Promise<void> {
    await this.stop().catch(() => undefined);
    rmSync(this.dir, { recursive: true, force: true });
  }
}
