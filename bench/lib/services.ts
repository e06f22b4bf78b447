// Runs the real service processes of a benchmark world and reads what they report: CPU time
// (/proc), Prometheus metrics, and (when asked) a CPU profile of the measured phase.
//
// Two ways to run a service:
// - `dist` (what production runs, see deploy/docker/Dockerfile):
//   `node --import @twofold/telemetry/register services/<name>/dist/main.js`, after `tsc -b`;
// - `source` (what the local stack and the tests run): the TypeScript sources through tsx.
// `npm run bench` builds and uses `dist`; a benchmark run alone uses BENCH_SERVICES (default
// `source`, since dist/ may be stale). tsx resolves every require() at run time with a
// stack trace (kafkajs requires its protocol modules on each request), which costs the
// services several % of their CPU: only `dist` figures are comparable with production.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { ServiceName } from '../../test/support/services.js';
import { REPO_ROOT, type Isolated } from '../../test/support/stack.js';
import { summarizeProfiles, type ProfileSummary } from './cpu-profile.js';
import { cpuMs, freePort, sleep } from './processes.js';

const PROFILER = fileURLToPath(new URL('./cpu-profiler.register.mjs', import.meta.url));

export type ServiceMode = 'dist' | 'source';

export const serviceMode = (): ServiceMode => (process.env['BENCH_SERVICES'] === 'dist' ? 'dist' : 'source');

/** Node arguments that start a service's main module in the given mode (see the top of this file). */
export function serviceArgs(name: ServiceName, mode: ServiceMode = serviceMode()): string[] {
  return mode === 'dist'
    ? ['--import', '@twofold/telemetry/register', `services/${name}/dist/main.js`]
    : [
        '--conditions=twofold-source',
        '--import',
        'tsx',
        '--import',
        '@twofold/telemetry/register',
        `services/${name}/src/main.ts`,
      ];
}

export interface BenchServices {
  apiUrl: string;
  mode: ServiceMode;
  processes: Map<ServiceName, ChildProcess>;
  /** CPU time (ms) each service process has used so far. */
  cpu(): Record<string, number>;
  /** Prometheus text of a service (its /metrics). */
  metrics(name: ServiceName): Promise<string>;
  /** Starts (first call) or stops and writes (second call) the CPU profile of every service. */
  toggleProfile(): void;
  /** Summaries of the profiles written (after toggleProfile twice, or stop()); `phase` counts from 1. */
  profiles(): (ProfileSummary & { service: string; phase: number })[];
  /** Sends SIGTERM to all and waits for them to exit; returns their exit codes. */
  stop(): Promise<Map<ServiceName, number | null>>;
}

export async function startBenchServices(
  world: Isolated,
  names: readonly ServiceName[],
  options: { env?: Record<string, string>; profileDir?: string; mode?: ServiceMode } = {},
): Promise<BenchServices> {
  const mode = options.mode ?? serviceMode();
  const apiPort = await freePort();
  const logDir = `${REPO_ROOT}.twofold/logs/tests`;
  mkdirSync(logDir, { recursive: true });
  const processes = new Map<ServiceName, ChildProcess>();
  const ports = new Map<ServiceName, number>();
  for (const name of names) {
    const metricsPort = name === 'api' ? apiPort : await freePort();
    ports.set(name, metricsPort);
    const child = spawn(process.execPath, serviceArgs(name, mode), {
      cwd: REPO_ROOT,
      env: {
        ...world.env,
        API_PORT: String(apiPort),
        API_HOST: '127.0.0.1',
        LOG_LEVEL: 'error',
        ...options.env,
        METRICS_PORT: String(name === 'api' ? await freePort() : metricsPort),
        ...(options.profileDir
          ? {
              NODE_OPTIONS: `${process.env['NODE_OPTIONS'] ?? ''} --import ${PROFILER}`.trim(),
              TWOFOLD_CPU_PROFILE_DIR: options.profileDir,
              TWOFOLD_CPU_PROFILE_NAME: name,
            }
          : {}),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const log = createWriteStream(`${logDir}/${world.id}-${name}.log`);
    child.stdout!.pipe(log);
    child.stderr!.pipe(log);
    processes.set(name, child);
  }
  const until = Date.now() + 90_000;
  for (const [name, child] of processes) {
    for (;;) {
      if (child.exitCode !== null)
        throw new Error(
          `${name} exited with ${child.exitCode}; see .twofold/logs/tests/${world.id}-${name}.log`,
        );
      const ok = await fetch(`http://127.0.0.1:${ports.get(name)}/readyz`).then(
        (r) => r.ok,
        () => false,
      );
      if (ok) break;
      if (Date.now() > until) throw new Error(`${name} not ready`);
      await sleep(200);
    }
  }
  let stopped: Promise<Map<ServiceName, number | null>> | undefined;
  return {
    apiUrl: `http://127.0.0.1:${apiPort}`,
    mode,
    processes,
    cpu: () => Object.fromEntries([...processes].map(([name, child]) => [name, cpuMs(child.pid)])),
    metrics: async (name) => (await fetch(`http://127.0.0.1:${ports.get(name)}/metrics`)).text(),
    toggleProfile() {
      for (const child of processes.values()) child.kill('SIGUSR2');
    },
    profiles() {
      if (!options.profileDir) return [];
      return summarizeProfiles(options.profileDir).map((p) => {
        const match = /\/([a-z-]+)-\d+-(\d+)\.cpuprofile$/.exec(p.file);
        return { ...p, service: match?.[1] ?? p.file, phase: Number(match?.[2] ?? 1) };
      });
    },
    stop() {
      stopped ??= (async () => {
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
      })();
      return stopped;
    },
  };
}
