// `npm run bench`: brings the local stack up, builds the services as production runs them,
// measures the parts underneath (Kafka, Redis, Postgres), runs every benchmark module that
// exists several times (medians), profiles the slow paths once, and writes bench/REPORT.md
// with its JSON twin bench/report.json.
//
//   npm run bench                       full run (tens of minutes), writes bench/REPORT.md
//   npm run bench -- --quick            smoke check: one tiny run of each, no thresholds, no
//                                       build (dist/ when it is fresh), the stack's
//                                       services left alone when Kafka, Postgres and Redis
//                                       answer; writes .twofold/bench/REPORT.quick.md (+ .json)
//   options: --runs N (default 3), --only baselines,verifier,e2e, --no-profile, --no-build
//   (without a build, services run from dist/ when it is fresh, else from source)
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release, tmpdir, totalmem, type } from 'node:os';
import { mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createPool } from '@twofold/store';
import { REPO_ROOT, stackEnv } from '../test/support/stack.js';
import { runBaselines } from './baselines.js';
import { portOpen, staleWorkspaces } from './lib/build.js';
import { summarizeProfiles } from './lib/cpu-profile.js';
import { findings } from './lib/findings.js';
import { meanEventBytes } from './lib/login-mix.js';
import { cpuMsWithReaped, machineCpuMs, pidsOf } from './lib/processes.js';
import { progress } from './lib/progress.js';
import { medianOfRuns } from './lib/stats.js';
import { computeTargets, renderReport, type BenchOutcome, type BenchReport } from './report.js';

type BenchFn = (opts: { quick: boolean }) => Promise<Record<string, number>>;

/** Every benchmark module: the service issues' and this harness's own. */
const BENCHES: readonly { name: string; file: string; exportName: string }[] = [
  { name: 'verifier', file: 'verifier.bench.ts', exportName: 'runVerifierBench' },
  { name: 'lockout', file: 'lockout.bench.ts', exportName: 'runLockoutBench' },
  { name: 'session', file: 'session.bench.ts', exportName: 'runSessionBench' },
  { name: 'audit-sink', file: 'audit-sink.bench.ts', exportName: 'runAuditSinkBench' },
  { name: 'api', file: 'api.bench.ts', exportName: 'runApiBench' },
  { name: 'e2e', file: 'e2e.bench.ts', exportName: 'runEndToEndBench' },
];
/**
 * --quick: each module's smallest load (the modules read these; a value set by the caller
 * wins). Enough to run every path once, not to measure anything.
 */
const QUICK_ENV: Record<string, string> = {
  BENCH_VERIFIER_RATE: '100',
  BENCH_LOCKOUT_RATE: '1000',
  BENCH_LOCKOUT_BACKLOG: '30000',
  BENCH_SESSION_RATE: '50',
  BENCH_AUDIT_EVENTS: '2000',
  BENCH_AUDIT_RATE: '500',
  BENCH_AUDIT_SECONDS: '3',
  BENCH_AUDIT_DIRECT_ROWS: '2000',
};

/** Benchmarks profiled in the extra run (where the issues' latency and throughput targets are missed most). */
const PROFILED = ['verifier', 'lockout', 'audit-sink', 'e2e'];

function option(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

/** A command's output (stdout, or stderr where tools such as `java -version` print). */
function sh(cmd: string, args: string[]): string {
  const result = spawnSync(cmd, args, { encoding: 'utf8' });
  return (result.stdout || result.stderr || String(result.error ?? '')).trim();
}

/** CPU (ms) used by this run and the stack it drives, to tell other people's work apart. */
function ownCpuMs(): number {
  // Every process whose command line shows it belongs to this checkout or to the stack,
  // with the children each one already reaped (cutime + cstime): the services, load
  // generators and perf tools this run started and that exited before the last sample
  // count through their parent (this process), instead of showing up as "other" CPU.
  const mine = new Set([
    process.pid,
    ...pidsOf(REPO_ROOT),
    ...pidsOf('redis-server'),
    ...pidsOf('postgres'),
    ...pidsOf('redis-benchmark'),
    ...pidsOf('pgbench'),
  ]);
  let total = 0;
  for (const pid of mine) {
    const ms = cpuMsWithReaped(pid);
    if (Number.isFinite(ms)) total += ms;
  }
  return total;
}

async function versions(): Promise<Record<string, string>> {
  const jar = readdirSync(`${REPO_ROOT}.cache/kafka/libs`).find((f) => /^kafka_2\.13-.*\.jar$/.test(f));
  const pkg = (name: string) => {
    try {
      return (
        JSON.parse(readFileSync(`${REPO_ROOT}node_modules/${name}/package.json`, 'utf8')) as {
          version: string;
        }
      ).version;
    } catch {
      return 'absent';
    }
  };
  let postgres = 'unknown';
  const pool = createPool({ url: stackEnv()['DATABASE_URL']!, schema: 'public', max: 1 });
  try {
    postgres = (await pool.query<{ v: string }>('SELECT version() AS v')).rows[0]!.v.split(' on ')[0]!;
  } catch {
    // left unknown
  } finally {
    await pool.end();
  }
  return {
    node: process.version,
    kafka: jar ? jar.replace(/^kafka_2\.13-|\.jar$/g, '') + ' (KRaft, one node)' : 'unknown',
    java: sh('java', ['-version']).split('\n')[0] ?? 'unknown',
    redis: sh('redis-server', ['--version']).replace(/^Redis server /, ''),
    postgres,
    kafkajs: pkg('kafkajs'),
    ioredis: pkg('ioredis'),
    pg: pkg('pg'),
    fastify: pkg('fastify'),
    bullmq: pkg('bullmq'),
    twofold: sh('git', ['-C', REPO_ROOT, 'rev-parse', '--short', 'HEAD']),
  };
}

/**
 * Runs a benchmark `runs` times; a failed run (a timeout on this shared machine, say) is
 * recorded and the next one still runs, so one hiccup does not throw away the others. The
 * outcome fails only when no run succeeded.
 */
async function measure(
  label: string,
  runs: number,
  fn: () => Promise<Record<string, number>>,
): Promise<BenchOutcome> {
  const results: Record<string, number>[] = [];
  const failedRuns: string[] = [];
  const started = performance.now();
  for (let i = 0; i < runs; i++) {
    progress.step(`${label}${runs > 1 ? ` (run ${i + 1}/${runs})` : ''}`);
    try {
      results.push(await fn());
    } catch (err) {
      progress.log(`${label} run ${i + 1} failed: ${(err as Error).stack ?? String(err)}`);
      failedRuns.push(`run ${i + 1}: ${(err as Error).message.split('\n')[0]}`);
    }
  }
  return {
    status: results.length > 0 ? 'ok' : `failed: ${failedRuns.join('; ')}`,
    figures: medianOfRuns(results),
    runs: results,
    failedRuns,
    seconds: (performance.now() - started) / 1000,
  };
}

async function loadBench(file: string, exportName: string): Promise<BenchFn | undefined> {
  const path = join(REPO_ROOT, 'bench', file);
  if (!existsSync(path)) return undefined;
  const mod = (await import(pathToFileURL(path).href)) as Record<string, unknown>;
  const fn = mod[exportName];
  if (typeof fn !== 'function') throw new Error(`${file} does not export ${exportName}`);
  return fn as BenchFn;
}

async function main(): Promise<void> {
  const quick = process.argv.includes('--quick');
  const runs = Number(option('--runs') ?? process.env['BENCH_RUNS'] ?? (quick ? 1 : 3));
  const only = option('--only')?.split(',');
  const profile = !quick && !process.argv.includes('--no-profile');
  const build = !quick && !process.argv.includes('--no-build');
  const selected = BENCHES.filter((b) => !only || only.includes(b.name));
  const withBaselines = !only || only.includes('baselines');
  const notes: string[] = [];
  progress.plan(
    2 +
      (withBaselines ? runs : 0) +
      selected.length * runs +
      (profile ? selected.filter((b) => PROFILED.includes(b.name)).length : 0),
  );

  if (quick) for (const [k, v] of Object.entries(QUICK_ENV)) process.env[k] ??= v;

  // A smoke run leaves a running stack alone: `stack.sh up` re-runs its bootstrap (topics,
  // migrations) and restarts services whose code changed, ~10 s the benchmarks do not need
  // (each makes its own world and starts its own service processes).
  const env = stackEnv();
  const ports = [
    Number(env['KAFKA_BROKERS']!.split(',')[0]!.split(':')[1]),
    Number(new URL(env['DATABASE_URL']!).port || 5432),
    Number(new URL(env['REDIS_URL']!).port || 6379),
  ];
  const stackRunning = quick && (await Promise.all(ports.map((p) => portOpen(p)))).every(Boolean);
  progress.step(
    stackRunning
      ? 'stack already up (Kafka, Postgres, Redis answer)'
      : 'bringing the stack up (deploy/local/stack.sh up)',
  );
  if (!stackRunning)
    execFileSync('bash', [`${REPO_ROOT}deploy/local/stack.sh`, 'up'], {
      stdio: ['ignore', 'ignore', 'inherit'],
    });

  const distNote =
    'compiled JavaScript (`node --import @twofold/telemetry/register services/<name>/dist/main.js`, as the image runs them) for every module but the api routes one, which starts the api from source as the integration tests do';
  let serviceModeNote =
    'TypeScript sources through tsx, as the local stack runs them (tsx resolves every require() at run time, which costs the services a few % of CPU more than production)';
  if (process.env['BENCH_SERVICES'] === 'source') {
    progress.step('services from source (BENCH_SERVICES=source)');
  } else if (build) {
    progress.step('building the services (tsc -b)');
    try {
      execFileSync('npx', ['tsc', '-b'], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
      process.env['BENCH_SERVICES'] = 'dist';
      serviceModeNote = distNote;
    } catch (err) {
      const e = err as { stdout?: Buffer };
      notes.push(
        `tsc -b failed, so services ran from source: ${(e.stdout?.toString() ?? String(err)).slice(0, 500)}`,
      );
    }
  } else {
    // No build asked for: dist/ when it is as new as the sources, else the sources.
    const stale = staleWorkspaces(REPO_ROOT);
    progress.step(
      stale.length ? 'services from source (dist/ is stale)' : 'services from dist/ (fresh, no build)',
    );
    if (stale.length === 0) {
      process.env['BENCH_SERVICES'] = 'dist';
      serviceModeNote = `${distNote}; dist/ was not rebuilt for this run (it was newer than every source file)`;
    } else {
      process.env['BENCH_SERVICES'] = 'source';
      serviceModeNote += `; dist/ was older than the sources of ${stale.join(', ')}`;
    }
  }
  if (quick)
    notes.push(
      `quick smoke run: tiny loads (${Object.entries(QUICK_ENV)
        .map(([k]) => `${k}=${process.env[k]}`)
        .join(
          ', ',
        )}), one run, short baselines; the figures show that every path runs, they measure nothing and no target is judged`,
    );

  const before = loadavg().map((l) => Math.round(l * 100) / 100);
  const machine0 = machineCpuMs();
  const own0 = ownCpuMs();
  const report: BenchReport = {
    generatedAt: new Date().toISOString(),
    quick,
    runsPerBench: runs,
    serviceMode: process.env['BENCH_SERVICES'] === 'dist' ? 'dist' : 'source',
    serviceModeNote,
    machine: {
      cores: cpus().length,
      cpuModel: cpus()[0]?.model ?? 'unknown',
      memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
      os: `${type()} ${release()}`,
      loadAverageBefore: before,
      loadAverageAfter: [],
      otherProcessesCpuPct: Number.NaN,
    },
    versions: await versions(),
    baselines: { status: 'not run: module absent', figures: {}, runs: [], failedRuns: [], seconds: 0 },
    benches: {},
    profiles: [],
    notes,
  };

  if (withBaselines) {
    const recordBytes = meanEventBytes();
    report.baselines = await measure('baselines: Kafka, Redis, Postgres', runs, async () => {
      const b = await runBaselines({ quick, recordBytes });
      const flat: Record<string, number> = {};
      for (const [part, figures] of Object.entries(b))
        for (const [k, v] of Object.entries(figures as Record<string, number>)) flat[`${part}_${k}`] = v;
      return flat;
    });
  }

  for (const bench of selected) {
    let fn: BenchFn | undefined;
    try {
      fn = await loadBench(bench.file, bench.exportName);
    } catch (err) {
      report.benches[bench.name] = {
        status: `failed: ${(err as Error).message}`,
        figures: {},
        runs: [],
        failedRuns: [],
        seconds: 0,
      };
      continue;
    }
    if (!fn) {
      for (let i = 0; i < runs; i++) progress.step(`${bench.name}: not run (module absent)`);
      report.benches[bench.name] = {
        status: 'not run: module absent',
        figures: {},
        runs: [],
        failedRuns: [],
        seconds: 0,
      };
      continue;
    }
    const run = fn;
    report.benches[bench.name] = await measure(bench.name, runs, () => run({ quick }));
  }

  if (profile) {
    const dir = mkdtempSync(join(tmpdir(), 'twofold-bench-profiles-'));
    process.env['BENCH_CPU_PROFILE'] = dir;
    for (const bench of selected.filter((b) => PROFILED.includes(b.name))) {
      const fn = await loadBench(bench.file, bench.exportName).catch(() => undefined);
      if (!fn) continue;
      progress.step(`${bench.name}: profiling run (CPU profiles of the services)`);
      // The lockout module profiles its detector for the whole run with --cpu-prof into a
      // directory of its own; the others add their findings themselves.
      const lockoutDir = bench.name === 'lockout' ? mkdtempSync(join(dir, 'lockout-')) : undefined;
      if (lockoutDir) process.env['BENCH_LOCKOUT_CPU_PROF'] = lockoutDir;
      await fn({ quick }).catch((err: unknown) =>
        progress.log(`profiling ${bench.name} failed: ${String(err)}`),
      );
      if (lockoutDir) {
        delete process.env['BENCH_LOCKOUT_CPU_PROF'];
        for (const summary of summarizeProfiles(lockoutDir))
          findings.addProfile({
            bench: 'lockout',
            phase: 'whole run (backlog drain, then the load phases)',
            service: 'lockout-detector',
            summary,
          });
      }
    }
    delete process.env['BENCH_CPU_PROFILE'];
    report.profiles = [...findings.profiles()];
  }

  const machine1 = machineCpuMs();
  const own1 = ownCpuMs();
  const wallMs = (machine1.total - machine0.total) / cpus().length;
  report.machine.loadAverageAfter = loadavg().map((l) => Math.round(l * 100) / 100);
  // Busy CPU of the whole machine minus what this checkout's processes and the stack used
  // (processes that exited during the run are missed by the second sample: an upper bound).
  report.machine.otherProcessesCpuPct = Math.max(
    0,
    Math.round(((machine1.busy - machine0.busy - Math.max(0, own1 - own0)) / Math.max(1, wallMs)) * 100),
  );
  progress.done();

  const outDir = quick ? `${REPO_ROOT}.twofold/bench` : `${REPO_ROOT}bench`;
  mkdirSync(outDir, { recursive: true });
  const base = quick ? 'REPORT.quick' : 'REPORT';
  writeFileSync(
    `${outDir}/${quick ? 'report.quick' : 'report'}.json`,
    `${JSON.stringify({ ...report, targets: computeTargets(report) }, null, 2)}\n`,
  );
  writeFileSync(`${outDir}/${base}.md`, renderReport(report));
  process.stdout.write(`\nwrote ${outDir}/${base}.md\n`);
  for (const t of computeTargets(report)) {
    if (quick) continue; // a smoke check asserts nothing
    process.stdout.write(
      `  ${t.met === undefined ? 'not measured' : t.met ? 'met    ' : 'MISSED '} ${t.what}: ${t.measured ?? '—'} (target ${t.op} ${t.value})\n`,
    );
  }
  const failed = Object.entries(report.benches).filter(([, o]) => o.status.startsWith('failed'));
  for (const [name, o] of failed) process.stdout.write(`  ${name}: ${o.status}\n`);
  for (const [name, o] of Object.entries({ baselines: report.baselines, ...report.benches }))
    if (o.status === 'ok' && o.failedRuns.length)
      process.stdout.write(
        `  ${name}: ${o.failedRuns.length} of ${runs} runs failed (${o.failedRuns.join('; ')})\n`,
      );
  process.exit(failed.length > 0 || report.baselines.status.startsWith('failed') ? 1 : 0);
}

await main();
