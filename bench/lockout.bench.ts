// Lockout detector throughput and detection latency.
//
// (1) Capacity: N failures are produced to the login topic first (12 partitions), then the
//     detector (its real main.ts, one process, as deployed) starts and drains them; the
//     sustained rate is failures counted per second between 10 % and 90 % of the backlog.
// (2) Latency under load: failures are produced at a steady rate (default 20,000/s) while,
//     every 100 ms, a fresh (user, IP) pair sends its 5th failure; detection latency is the
//     time from producing that 5th failure to the (user, IP) lockout visible in Redis.
//
// The load mixes credential stuffing and spraying (random users of 100,000 from random IPs
// of 20,000 in 2,000 networks, 70 %) with brute force (500 targets from 200 IPs, 30 %).
// Everything shares the machine (Kafka, Redis, the detector, this load generator); figures
// are indicative. Where the time goes comes from the detector's step histogram and the CPU
// each process used (/proc, Linux).
//
// Run: `node --conditions=twofold-source --import tsx bench/lockout.bench.ts [--quick]`.
// BENCH_LOCKOUT_RATE (default 20000), BENCH_LOCKOUT_CONCURRENCY (partitions at once, default:
// the service's), BENCH_LOCKOUT_CPU_PROF (a directory: the detector writes a CPU profile there).
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { pathToFileURL } from 'node:url';
import { loadCommonConfig } from '@twofold/config';
import { createEvent, topicCatalog, type AnyTwofoldEvent } from '@twofold/contracts';
import { createEventProducer, createKafka, deleteTopics, ensureTopics, groupLag } from '@twofold/kafka';
import { createRedis, waitForRedis } from '@twofold/redis';
import { lockoutKeys, lockoutSourceOf } from '@twofold/state';
import { createLogger } from '@twofold/telemetry';
import { REPO_ROOT, stackEnv } from '../test/support/stack.js';
import { serviceArgs } from './lib/services.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const PARTITIONS = 12;
const PROBE_EVERY_MS = 100;
const PAIR_THRESHOLD = 5;

function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

/** CPU time (user + system, ms) a process has used so far, from /proc (Linux); NaN elsewhere. */
function cpuMs(pid: number | undefined): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
  } catch {
    return Number.NaN;
  }
}

/** Pid of the first process whose command line contains `needle` (read only, to attribute CPU). */
function pidOf(needle: string): number | undefined {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(needle)) return Number(entry);
    } catch {
      // gone
    }
  }
  return undefined;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

/** Deterministic pseudo-random numbers (the same load every run). */
function random(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The attack mix: 70 % stuffing/spraying, 30 % brute force. */
function loadGenerator(seed: number) {
  const next = random(seed);
  const pick = (n: number) => Math.floor(next() * n);
  return (): AnyTwofoldEvent => {
    const brute = next() < 0.3;
    const user = brute ? `target-${pick(500)}` : `user-${pick(100_000)}`;
    const ipIndex = brute ? pick(200) : 1_000 + pick(20_000);
    const ip = `10.${(ipIndex >> 8) & 0xff}.${Math.floor(ipIndex / 10) % 250}.${ipIndex % 250}`;
    return createEvent('twofold.login.failed', 'app/jira', user, {
      appId: 'jira',
      ip,
      reason: 'bad_password',
    });
  };
}

/** Sums a metric family's samples (by label filter) from Prometheus text. */
function metricSum(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const rest = line.slice(name.length);
    if (rest[0] !== '{' && rest[0] !== ' ') continue;
    if (!Object.entries(labels).every(([k, v]) => rest.includes(`${k}="${v}"`))) continue;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

export async function runLockoutBench(opts: { quick: boolean }): Promise<Record<string, number>> {
  const backlog = Number(process.env['BENCH_LOCKOUT_BACKLOG'] ?? (opts.quick ? 100_000 : 400_000));
  const rate = Number(process.env['BENCH_LOCKOUT_RATE'] ?? 20_000);
  const loadSeconds = opts.quick ? 5 : 20;
  const concurrency = process.env['BENCH_LOCKOUT_CONCURRENCY'];
  const profileDir = process.env['BENCH_LOCKOUT_CPU_PROF'];
  const id = `bench-lockout-${randomUUID().slice(0, 8)}`;
  const env = {
    ...stackEnv(),
    TWOFOLD_TOPIC_PREFIX: `t.${id}.`,
    TWOFOLD_GROUP_PREFIX: `t.${id}.`,
    REDIS_KEY_PREFIX: `t:${id}:`,
  };
  const config = loadCommonConfig('bench', env);
  const logger = createLogger({ service: 'bench', level: 'warn' });
  const topics = topicCatalog(config.kafka.topicPrefix);
  const kafka = createKafka({ ...config.kafka, clientId: `bench-${id}`, logger });
  await ensureTopics(kafka, topics, { partitions: PARTITIONS });
  const producer = createEventProducer(kafka, { topics, logger });
  await producer.connect();
  const redis = createRedis(config.redis.url, 'state', { commandTimeout: 10_000 });
  await waitForRedis(redis);
  const groupId = `${config.kafka.groupPrefix}twofold-lockout-detector`;
  const next = loadGenerator(42);
  let detector: ChildProcess | undefined;
  const results: Record<string, number> = {};

  const redisCpu = async () => {
    const info = await redis.info('cpu');
    const field = (name: string) => Number(new RegExp(`${name}:([\\d.]+)`).exec(info)?.[1] ?? Number.NaN);
    return (field('used_cpu_user') + field('used_cpu_sys')) * 1000;
  };
  const kafkaPid = pidOf('kafka.Kafka');

  try {
    // (1) Backlog, then the detector drains it.
    const produceStart = performance.now();
    for (let sent = 0; sent < backlog; sent += 5_000) {
      const chunk = Array.from({ length: Math.min(5_000, backlog - sent) }, next);
      await producer.publish('login', chunk);
    }
    results['backlog_failures'] = backlog;
    results['backlog_produce_per_s'] = Math.round(backlog / ((performance.now() - produceStart) / 1000));

    const metricsPort = await freePort();
    detector = spawn(
      process.execPath,
      [
        ...(profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : []),
        ...serviceArgs('lockout-detector'),
      ],
      {
        cwd: REPO_ROOT,
        env: {
          ...env,
          LOG_LEVEL: 'warn',
          METRICS_PORT: String(metricsPort),
          ...(concurrency ? { LOCKOUT_PARTITIONS_CONCURRENCY: concurrency } : {}),
        },
        stdio: ['ignore', 'inherit', 'inherit'],
      },
    );
    const metrics = async () => (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    const counted = async () => {
      const text = await metrics();
      return metricSum(text, 'twofold_lockout_failures_total');
    };
    const until = Date.now() + 120_000;
    for (;;) {
      if (detector.exitCode !== null) throw new Error(`the detector exited with ${detector.exitCode}`);
      const ok = await fetch(`http://127.0.0.1:${metricsPort}/readyz`).then(
        (r) => r.ok,
        () => false,
      );
      if (ok) break;
      if (Date.now() > until) throw new Error('the detector did not become ready');
      await sleep(100);
    }
    const samples: { at: number; n: number }[] = [];
    const cpu0 = { detector: cpuMs(detector.pid), redis: await redisCpu(), kafka: cpuMs(kafkaPid) };
    for (;;) {
      const n = await counted().catch(() => Number.NaN);
      samples.push({ at: performance.now(), n });
      if (n >= backlog) break;
      if (samples.length > 2_400) throw new Error(`backlog not drained: ${n} of ${backlog}`);
      await sleep(250);
    }
    const cpu1 = { detector: cpuMs(detector.pid), redis: await redisCpu(), kafka: cpuMs(kafkaPid) };
    const first = samples.find((s) => s.n >= backlog * 0.1)!;
    const last = samples.find((s) => s.n >= backlog * 0.9)!;
    const wall = (last.at - first.at) / 1000;
    results['failures_per_s_sustained'] = Math.round((last.n - first.n) / wall);
    const drain = (samples.at(-1)!.at - samples[0]!.at) / 1000;
    results['drain_seconds'] = Math.round(drain * 10) / 10;
    results['drain_cpu_detector_pct'] = Math.round((cpu1.detector - cpu0.detector) / 10 / drain);
    results['drain_cpu_redis_pct'] = Math.round((cpu1.redis - cpu0.redis) / 10 / drain);
    results['drain_cpu_kafka_pct'] = Math.round((cpu1.kafka - cpu0.kafka) / 10 / drain);
    const text = await metrics();
    for (const step of ['count', 'decide', 'impose', 'schedule', 'publish']) {
      results[`drain_step_${step}_ms_per_chunk`] =
        Math.round(
          (metricSum(text, 'twofold_lockout_step_seconds_sum', { step }) /
            Math.max(metricSum(text, 'twofold_lockout_step_seconds_count', { step: 'count' }), 1)) *
            100_000,
        ) / 100;
    }
    const batches = metricSum(text, 'twofold_kafka_batch_duration_seconds_count');
    results['drain_batches'] = batches;
    results['drain_batch_ms_mean'] =
      Math.round(
        (metricSum(text, 'twofold_kafka_batch_duration_seconds_sum') / Math.max(batches, 1)) * 100_000,
      ) / 100;
    results['drain_failures_per_batch'] = Math.round(backlog / Math.max(batches, 1));

    results['drain_cpu_detector_us_per_failure'] = Math.round(
      ((cpu1.detector - cpu0.detector) * 1000) / backlog,
    );
    results['drain_cpu_redis_us_per_failure'] = Math.round(((cpu1.redis - cpu0.redis) * 1000) / backlog);

    // (2) Steady load with probes: at the target rate, then at half the measured capacity.
    let probes = 0;
    const loadPhase = async (label: string, phaseRate: number) => {
      await drained();
      const latencies: number[] = [];
      const pending = new Map<string, number>();
      let polling = true;
      const poller = (async () => {
        while (polling || pending.size > 0) {
          if (pending.size > 0) {
            const keys = [...pending.keys()];
            const pipeline = redis.pipeline();
            for (const key of keys) pipeline.exists(key);
            const replies = (await pipeline.exec()) ?? [];
            const now = performance.now();
            replies.forEach(([err, exists], i) => {
              if (!err && exists === 1) {
                latencies.push(now - pending.get(keys[i]!)!);
                pending.delete(keys[i]!);
              }
            });
          }
          await sleep(2);
          if (!polling && pending.size > 0 && performance.now() - Math.min(...pending.values()) > 60_000)
            break;
        }
      })();
      const tickMs = 50;
      const perTick = Math.max(1, Math.round((phaseRate * tickMs) / 1000));
      const loadStart = performance.now();
      const countedBefore = await counted();
      const cpuBefore = { detector: cpuMs(detector!.pid), redis: await redisCpu(), kafka: cpuMs(kafkaPid) };
      let produced = 0;
      let phaseProbes = 0;
      let nextProbe = loadStart;
      const sends: Promise<void>[] = [];
      while (performance.now() - loadStart < loadSeconds * 1000) {
        const tickStart = performance.now();
        sends.push(producer.publish('login', Array.from({ length: perTick }, next)));
        produced += perTick;
        if (tickStart >= nextProbe) {
          nextProbe += PROBE_EVERY_MS;
          const username = `probe-${probes++}`;
          phaseProbes++;
          const ip = `192.0.2.${probes % 250}`;
          const source = lockoutSourceOf(ip)!;
          const events = Array.from({ length: PAIR_THRESHOLD }, () =>
            createEvent('twofold.login.failed', 'app/jira', username, {
              appId: 'jira',
              ip,
              reason: 'bad_password',
            }),
          );
          pending.set(
            `${lockoutKeys.user(config.redis.keyPrefix, username)}:pairlock:${source.ip}`,
            performance.now(),
          );
          sends.push(producer.publish('login', events));
          produced += PAIR_THRESHOLD;
        }
        // Keep at most a few ticks in flight: the producer's rate is part of the measure.
        while (sends.length > 8) await sends.shift();
        const spent = performance.now() - tickStart;
        if (spent < tickMs) await sleep(tickMs - spent);
      }
      await Promise.all(sends);
      const seconds = (performance.now() - loadStart) / 1000;
      results[`${label}_offered_per_s`] = phaseRate;
      results[`${label}_produced_per_s`] = Math.round(produced / seconds);
      results[`${label}_counted_per_s`] = Math.round(((await counted()) - countedBefore) / seconds);
      results[`${label}_lag_at_end`] = await groupLag(kafka, groupId, [topics.login, topics.secondFactor]);
      polling = false;
      await poller;
      const wall = (performance.now() - loadStart) / 1000;
      results[`${label}_cpu_detector_pct`] = Math.round(
        (cpuMs(detector!.pid) - cpuBefore.detector) / 10 / wall,
      );
      results[`${label}_cpu_redis_pct`] = Math.round(((await redisCpu()) - cpuBefore.redis) / 10 / wall);
      results[`${label}_cpu_kafka_pct`] = Math.round((cpuMs(kafkaPid) - cpuBefore.kafka) / 10 / wall);
      results[`${label}_probes`] = phaseProbes;
      results[`${label}_probes_detected`] = latencies.length;
      results[`${label}_detection_p50_ms`] = Math.round(percentile(latencies, 50));
      results[`${label}_detection_p99_ms`] = Math.round(percentile(latencies, 99));
      results[`${label}_detection_max_ms`] = Math.round(Math.max(...latencies));
    };
    const drained = () =>
      (async () => {
        const until = Date.now() + 300_000;
        while ((await groupLag(kafka, groupId, [topics.login, topics.secondFactor])) > 0) {
          if (Date.now() > until) throw new Error('the detector did not catch up');
          await sleep(250);
        }
      })();
    await loadPhase('target', rate);
    await loadPhase('half_capacity', Math.round(results['failures_per_s_sustained'] / 2));
    return results;
  } finally {
    if (detector && detector.exitCode === null) {
      detector.kill('SIGTERM');
      await new Promise((r) => detector!.once('exit', r));
    }
    await producer.disconnect().catch(() => undefined);
    await deleteTopics(kafka, Object.values(topics)).catch(() => undefined);
    let cursor = '0';
    do {
      const [nextCursor, keys] = await redis.scan(
        cursor,
        'MATCH',
        `${config.redis.keyPrefix}*`,
        'COUNT',
        10_000,
      );
      cursor = nextCursor;
      if (keys.length > 0) await redis.del(...keys);
    } while (cursor !== '0');
    await redis.quit();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const quick = process.argv.includes('--quick');
  runLockoutBench({ quick }).then(
    (r) => {
      console.log(JSON.stringify(r, null, 2));
      process.exit(0);
    },
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
}
