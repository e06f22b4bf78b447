// One twofold service as a real process (its main.ts) in a world, which a reliability test
// can kill (SIGKILL, SIGTERM) and start again on the same ports.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream, mkdirSync, readFileSync } from 'node:fs';
import { freePort, type ServiceName } from '../../support/services.js';
import { REPO_ROOT, type Isolated } from '../../support/stack.js';

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** From the signal to the exit. */
  ms: number;
}

export class ServiceProcess {
  child: ChildProcess | undefined;
  starts = 0;
  private port = 0;
  private apiPort = 0;

  constructor(
    readonly world: Isolated,
    readonly name: ServiceName,
    readonly env: Record<string, string> = {},
  ) {}

  get url(): string {
    return `http://127.0.0.1:${this.name === 'api' ? this.apiPort : this.port}`;
  }
  get logFile(): string {
    return `${REPO_ROOT}.twofold/logs/tests/${this.world.id}-${this.name}.log`;
  }

  /** Starts the process and waits for /readyz (unless `ready` is false). */
  async start(ready = true): Promise<void> {
    this.port ||= await freePort();
    this.apiPort ||= await freePort();
    mkdirSync(`${REPO_ROOT}.twofold/logs/tests`, { recursive: true });
    const child = spawn(
      process.execPath,
      [
        '--conditions=twofold-source',
        '--import',
        'tsx',
        '--import',
        '@twofold/telemetry/register',
        `services/${this.name}/src/main.ts`,
      ],
      {
        cwd: REPO_ROOT,
        env: {
          ...this.world.env,
          API_PORT: String(this.apiPort),
          API_HOST: '127.0.0.1',
          LOG_LEVEL: 'warn',
          ...this.env,
          METRICS_PORT: String(this.port),
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    const log = createWriteStream(this.logFile, { flags: 'a' });
    child.stdout!.pipe(log);
    child.stderr!.pipe(log);
    this.child = child;
    this.starts++;
    if (ready) await this.waitReady();
  }

  async waitReady(timeoutMs = 180_000): Promise<void> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      if (this.child?.exitCode !== null)
        throw new Error(`${this.name} exited with ${this.child?.exitCode}; see ${this.logFile}`);
      const ok = await fetch(`${this.url}/readyz`).then(
        (r) => r.ok,
        () => false,
      );
      if (ok) return;
      if (Date.now() > until)
        throw new Error(`${this.name} not ready in ${timeoutMs} ms; see ${this.logFile}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  running(): boolean {
    return !!this.child && this.child.exitCode === null && this.child.signalCode === null;
  }

  async kill(signal: 'SIGKILL' | 'SIGTERM'): Promise<Exit> {
    const child = this.child;
    if (!child || !this.running())
      return { code: child?.exitCode ?? null, signal: child?.signalCode ?? null, ms: 0 };
    const started = Date.now();
    const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
    child.kill(signal);
    const [code, sig] = await exited;
    return { code, signal: sig, ms: Date.now() - started };
  }

  async metrics(): Promise<string> {
    return (await fetch(`${this.url}/metrics`)).text();
  }

  log(): string {
    try {
      return readFileSync(this.logFile, 'utf8');
    } catch {
      return '';
    }
  }
}

/** Starts the services (in order) and returns them by name. */
export async function startServiceSet(
  world: Isolated,
  names: readonly ServiceName[],
  env: Record<string, string> = {},
): Promise<Map<ServiceName, ServiceProcess>> {
  const set = new Map<ServiceName, ServiceProcess>();
  for (const name of names) set.set(name, new ServiceProcess(world, name, env));
  await Promise.all([...set.values()].map((s) => s.start(false)));
  for (const s of set.values()) await s.waitReady();
  return set;
}

export async function stopServiceSet(
  set: Map<ServiceName, ServiceProcess> | undefined,
): Promise<Map<ServiceName, Exit>> {
  const exits = new Map<ServiceName, Exit>();
  await Promise.all(
    [...(set ?? new Map<ServiceName, ServiceProcess>())].map(async ([name, s]) =>
      exits.set(name, await s.kill('SIGTERM')),
    ),
  );
  return exits;
}
