// Runs twofold services as real processes (their main.ts composition roots) inside an
// isolated world: own topics, groups, Redis prefix, schema and ports.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream, mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { REPO_ROOT, type Isolated } from './stack.js';

export type ServiceName = 'api' | 'verifier' | 'lockout-detector' | 'session-broadcaster' | 'audit-sink';

export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  server.close();
  await once(server, 'close');
  return port;
}

export interface RunningServices {
  apiUrl: string;
  env: Record<string, string>;
  processes: Map<ServiceName, ChildProcess>;
  /** Sends SIGTERM to all and waits for them to exit; returns their exit codes. */
  stop(): Promise<Map<ServiceName, number | null>>;
}

export async function startServices(
  world: Isolated,
  names: readonly ServiceName[],
  /** Overrides; undefined unsets a variable (API_HOST: undefined runs the api on its default). */
  extraEnv: Record<string, string | undefined> = {},
): Promise<RunningServices> {
  const apiPort = await freePort();
  const env = Object.fromEntries(
    Object.entries({
      ...world.env,
      API_PORT: String(apiPort),
      API_HOST: '127.0.0.1',
      LOG_LEVEL: 'warn',
      ...extraEnv,
    }).filter((entry): entry is [string, string] => entry[1] !== undefined),
  );
  const logDir = `${REPO_ROOT}.twofold/logs/tests`;
  mkdirSync(logDir, { recursive: true });
  const processes = new Map<ServiceName, ChildProcess>();
  const readyUrls: string[] = [];
  for (const name of names) {
    const metricsPort = await freePort();
    const child = spawn(
      process.execPath,
      [
        '--conditions=twofold-source',
        '--import',
        'tsx',
        '--import',
        '@twofold/telemetry/register',
        `services/${name}/src/main.ts`,
      ],
      {
        cwd: REPO_ROOT,
        env: { ...env, METRICS_PORT: String(metricsPort) },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    const log = createWriteStream(`${logDir}/${world.id}-${name}.log`);
    child.stdout!.pipe(log);
    child.stderr!.pipe(log);
    processes.set(name, child);
    readyUrls.push(
      name === 'api' ? `http://127.0.0.1:${apiPort}/readyz` : `http://127.0.0.1:${metricsPort}/readyz`,
    );
  }
  const until = Date.now() + 60_000;
  for (const [i, url] of readyUrls.entries()) {
    for (;;) {
      const child = [...processes.values()][i]!;
      if (child.exitCode !== null)
        throw new Error(
          `${names[i]} exited with ${child.exitCode}; see .twofold/logs/tests/${world.id}-${names[i]}.log`,
        );
      const ok = await fetch(url).then(
        (r) => r.ok,
        () => false,
      );
      if (ok) break;
      if (Date.now() > until) throw new Error(`${names[i]} not ready at ${url}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  return {
    apiUrl: `http://127.0.0.1:${apiPort}`,
    env,
    processes,
    async stop() {
      const codes = new Map<ServiceName, number | null>();
      await Promise.all(
        [...processes].map(async ([name, child]) => {
          if (child.exitCode === null && child.signalCode === null) {
            child.kill('SIGTERM');
            await once(child, 'exit');
          }
          codes.set(name, child.exitCode);
        }),
      );
      return codes;
    },
  };
}

/** A small client for the api in tests. */
export function apiClient(baseUrl: string, key?: string) {
  return async function call<T = Record<string, unknown>>(
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<{ status: number; body: T; headers: Headers }> {
    const res = await fetch(`${baseUrl}${path}`, {
      method,
      headers: {
        ...(key ? { authorization: `Bearer ${key}` } : {}),
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        ...headers,
      },
      ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      /* not JSON: keep the text */
    }
    return { status: res.status, body: parsed as T, headers: res.headers };
  };
}
