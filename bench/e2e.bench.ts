// End-to-end load (issue 9): simulated apps publish a login mix (IdP and local logins,
// sessions already verified, logouts, mistyped passwords) plus an attack (credential
// stuffing, brute force) to twofold.login.v1, while interactive apps post logins to the api
// with ?wait=decision and users type codes (2fa.verified, 2fa.failed). Every service runs as
// deployed, one process each, in an isolated world of the local stack (12 partitions).
//
// A step runs the load at a rate for a while; it is *sustained* when, during the step and
// until it drains, every event is decided by the verifier, counted by the lockout detector
// and stored by the audit sink with a lag under 2 s: each group's lag in seconds (the age of
// the oldest event it has not committed, sampled every 250 ms from offsets, see
// lib/time-lag.ts) stays under 2 s for all three groups, every group is at the end within
// 2 s of the last event, audit rows' received_at − occurred_at p99 is under 2 s, the
// generator kept its rate and every interactive login was decided. The verifier's lag per
// event (its 2fa.decided time − the login's time, joined in the audit table) is reported too.
//
// The load is open-loop: the bulk generator (its own process) publishes on a clock, and the
// interactive logins leave on a clock whether or not earlier ones were answered, each
// latency measured from when the request was due (no coordinated omission).
//
// 1. Ramp: the bulk rate goes up step by step (with 50 interactive logins/s measuring the
//    decision latency) until a step is not sustained; the sustained rate is the last that was.
// 2. Interactive at the target: 1,000 logins/s through the api during the load, the bulk
//    making up the rest of the sustained rate (so the total is what was sustained; half the
//    first step when none was): decision p50/p99 from when each login was due.
// 3. Nothing lost: once drained, decisions = successful logins produced, failures counted
//    by the detector = failures produced, audit rows per type = events produced per type.
//
// Run: `node --conditions=twofold-source --import tsx bench/e2e.bench.ts [--quick]`.
// BENCH_E2E_STEPS (bulk rates, comma-separated), BENCH_E2E_SECONDS (per step, default 20),
// BENCH_E2E_INTERACTIVE (default 1000), BENCH_CPU_PROFILE=<dir>, BENCH_SERVICES=dist.
import { fork, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { hashSessionToken } from '@twofold/contracts';
import { groupLag } from '@twofold/kafka';
import { generateSecret, generateTotp } from '@twofold/otp';
import { createRedis, waitForRedis } from '@twofold/redis';
import { applySessionChanges } from '@twofold/state';
import { createPool, type Pool } from '@twofold/store';
import type { Isolated } from '../test/support/stack.js';
import { findings } from './lib/findings.js';
import type { LoadReport, LoadRequest } from './lib/login-load.process.js';
import { MIX_APPS, mixSessionToken, mixUser } from './lib/login-mix.js';
import { runOpenLoop, type OpenLoopResult } from './lib/open-loop.js';
import { cpuMs, cpuMsOfAll, machineCpuMs, pidsOf, sleep } from './lib/processes.js';
import { progress } from './lib/progress.js';
import { keyRingFromEnv, registerApps, seedEnrollments } from './lib/seed.js';
import { startBenchServices, type BenchServices } from './lib/services.js';
import { metricSum, percentile, round } from './lib/stats.js';
import { createTimeLagTracker, summarizeLag, type TimeLagTracker } from './lib/time-lag.js';
import { benchWorld } from './lib/world.js';

const LAG_LIMIT_S = 2;
const GROUPS = ['verifier', 'lockout', 'audit'] as const;
type GroupName = (typeof GROUPS)[number];

interface Groups {
  verifier: { id: string; topics: string[] };
  lockout: { id: string; topics: string[] };
  audit: { id: string; topics: string[] };
}

/** Users enrolled, and how many of them hold a verified session. */
interface Shape {
  enrolled: number;
  verifiedSessions: number;
}

interface StepResult {
  bulkRate: number;
  interactiveRate: number;
  produced: number;
  producedPerS: number;
  generatorLagMs: number;
  sustained: boolean;
  why: string;
  /** Per group, the worst and p99 lag (ms) sampled during the step and its drain. */
  lag: Record<GroupName, { maxMs: number; p99Ms: number }>;
  drainS: number;
  verifierLagP50Ms: number;
  verifierLagP99Ms: number;
  interactiveSendDelayMaxMs: number;
  auditLagP50Ms: number;
  auditLagP99Ms: number;
  auditLagMaxMs: number;
  decisionP50Ms: number;
  decisionP99Ms: number;
  decisionAnsweredPerS: number;
  decisionTimeouts: number;
  cpuPct: Record<string, number>;
  /** CPU (µs) each process spent per login event of the step, its drain included. */
  cpuUsPerEvent: Record<string, number>;
  machineBusyPct: number;
}

/** Steps that narrow the sustained rate down after the ramp's first failure. */
const REFINE_STEPS = 2;

export async function runEndToEndBench(opts: { quick: boolean }): Promise<Record<string, number>> {
  const seconds = Number(process.env['BENCH_E2E_SECONDS'] ?? (opts.quick ? 3 : 20));
  const steps = (
    process.env['BENCH_E2E_STEPS'] ?? (opts.quick ? '200' : '500,1000,2000,4000,6000,8000,12000,16000,20000')
  )
    .split(',')
    .map(Number);
  const interactiveTarget = Number(process.env['BENCH_E2E_INTERACTIVE'] ?? (opts.quick ? 50 : 1_000));
  const probeRate = opts.quick ? 20 : 50;
  const shape: Shape = opts.quick
    ? { enrolled: 500, verifiedSessions: 100 }
    : { enrolled: 5_000, verifiedSessions: 1_000 };
  const profileRoot = process.env['BENCH_CPU_PROFILE'];
  const profileDir = profileRoot ? mkdtempSync(join(profileRoot, 'e2e-')) : undefined;

  progress.note('setting up (world, five services)');
  // A smoke run makes fewer partitions: topic creation and the consumer groups' joins are
  // most of its set-up time.
  const world = await benchWorld('bench-e2e', { database: true, ...(opts.quick ? { partitions: 3 } : {}) });
  let services: BenchServices | undefined;
  let load: ChildProcess | undefined;
  let lag: TimeLagTracker | undefined;
  const pool = createPool({ url: world.config.database.url, schema: world.config.database.schema, max: 4 });
  const results: Record<string, number> = {};
  try {
    services = await startBenchServices(
      world,
      ['verifier', 'lockout-detector', 'session-broadcaster', 'audit-sink', 'api'],
      {
        env: { RATE_LIMIT_VERIFY_PER_APP: '0', RATE_LIMIT_EVENTS_PER_APP: '0' },
        ...(profileDir ? { profileDir } : {}),
      },
    );
    const keys = await registerApps(services.apiUrl, world.env['TWOFOLD_ADMIN_KEY']!, MIX_APPS);
    const secret = generateSecret();
    progress.note(`enrolling ${shape.enrolled} users, ${shape.verifiedSessions} verified sessions`);
    await seedEnrollments(
      pool,
      keyRingFromEnv(world.env),
      Array.from({ length: shape.enrolled }, (_, i) => mixUser(i)),
      secret,
    );
    await seedVerifiedSessions(world, shape.verifiedSessions);

    load = fork(fileURLToPath(new URL('./lib/login-load.process.ts', import.meta.url)), {
      execArgv: ['--conditions=twofold-source', '--import', 'tsx'],
      env: { ...world.env, LOG_LEVEL: 'error' },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    await once(load, 'message');
    const prefix = world.config.kafka.groupPrefix;
    const t = world.topics;
    const groups: Groups = {
      verifier: { id: `${prefix}twofold-verifier`, topics: [t.login] },
      lockout: { id: `${prefix}twofold-lockout-detector`, topics: [t.login, t.secondFactor] },
      audit: { id: `${prefix}twofold-audit-sink`, topics: Object.values(t) },
    };
    lag = await createTimeLagTracker(
      world.kafka,
      GROUPS.map((name) => ({ name, ...groups[name] })),
    );
    const interactive = createInteractiveApps(services.apiUrl, keys, secret, shape);
    const ctx: StepContext = {
      world,
      services,
      load,
      pool,
      groups,
      interactive,
      lag,
      shape,
      produced: {},
      unanswered: 0,
    };

    // Warm up: JIT, connections, consumer fetch sessions (a smoke run has no figure to protect).
    if (!opts.quick) {
      progress.note('warming up');
      await runStep(ctx, { bulkRate: 200, interactiveRate: 20, seconds: 5, seed: 1 });
    }

    // (1) Ramp.
    const ramp: StepResult[] = [];
    const rampStep = async (label: string, bulkRate: number, seed: number): Promise<StepResult> => {
      progress.note(`${label}: ${bulkRate} events/s + ${probeRate} interactive, ${seconds} s`);
      // The profiling run profiles every step; the report keeps the first one not sustained.
      if (profileDir) ctx.services.toggleProfile();
      const step = await runStep(ctx, { bulkRate, interactiveRate: probeRate, seconds, seed });
      if (profileDir) ctx.services.toggleProfile();
      ramp.push(step);
      progress.log(
        `  e2e ${bulkRate}/s: ${step.sustained ? 'sustained' : `not sustained (${step.why})`}; lag max ${GROUPS.map((g) => `${g} ${step.lag[g].maxMs} ms`).join(', ')}; decision p99 ${step.decisionP99Ms} ms; machine ${step.machineBusyPct}% busy`,
      );
      return step;
    };
    for (const [i, bulkRate] of steps.entries()) {
      const step = await rampStep(`ramp ${i + 1}/${steps.length}`, bulkRate, 100 + i);
      if (!step.sustained) break;
    }
    // The ramp doubles, so the rate it reports can be half the real one: two more steps
    // halve the interval between the last rate sustained and the first not, twice.
    const firstFailed = ramp.at(-1);
    const lastPassed = ramp.at(-2);
    if (!opts.quick && firstFailed && !firstFailed.sustained && lastPassed?.sustained) {
      let [low, high] = [lastPassed.bulkRate, firstFailed.bulkRate];
      for (let k = 0; k < REFINE_STEPS; k++) {
        const bulkRate = Math.round((low + high) / 2 / 50) * 50;
        if (bulkRate <= low || bulkRate >= high) break;
        if (!Number.isFinite(await drain(ctx, 120_000))) break;
        const step = await rampStep('ramp refined', bulkRate, 200 + k);
        if (step.sustained) low = bulkRate;
        else high = bulkRate;
      }
    }
    const byRate = [...ramp].sort((a, b) => a.bulkRate - b.bulkRate);
    const passed = byRate.filter((s) => s.sustained);
    const best = passed.at(-1);
    results['sustained_events_per_s'] = best ? Math.round(best.producedPerS + best.decisionAnsweredPerS) : 0;
    results['target_events_per_s'] = 20_000;
    for (const s of byRate) {
      const k = `ramp_${s.bulkRate}`;
      results[`${k}_sustained`] = s.sustained ? 1 : 0;
      results[`${k}_produced_per_s`] = round(s.producedPerS);
      for (const g of GROUPS) results[`${k}_lag_max_ms_${g}`] = s.lag[g].maxMs;
      results[`${k}_audit_row_lag_p99_ms`] = s.auditLagP99Ms;
      results[`${k}_verifier_event_lag_p99_ms`] = s.verifierLagP99Ms;
      results[`${k}_drain_s`] = round(s.drainS, 2);
      results[`${k}_decision_p99_ms`] = s.decisionP99Ms;
      results[`${k}_machine_busy_pct`] = s.machineBusyPct;
      results[`${k}_cpu_us_per_event`] = capacityOf(s).usPerEvent;
    }
    // Where the CPU goes per event at the highest step run, and what the cores could carry.
    const top = byRate.at(-1);
    if (top) {
      for (const [name, us] of Object.entries(top.cpuUsPerEvent))
        results[`top_step_cpu_${name}_us_per_event`] = us;
      results['top_step_cpu_us_per_event'] = capacityOf(top).usPerEvent;
      results['cpu_bound_capacity_events_per_s'] = capacityOf(top).eventsPerS;
    }
    if (best) {
      for (const g of GROUPS) {
        results[`at_sustained_lag_p99_ms_${g}`] = best.lag[g].p99Ms;
        results[`at_sustained_lag_max_ms_${g}`] = best.lag[g].maxMs;
      }
      results['at_sustained_audit_row_lag_p50_ms'] = best.auditLagP50Ms;
      results['at_sustained_audit_row_lag_p99_ms'] = best.auditLagP99Ms;
      results['at_sustained_verifier_event_lag_p50_ms'] = best.verifierLagP50Ms;
      results['at_sustained_verifier_event_lag_p99_ms'] = best.verifierLagP99Ms;
      results['at_sustained_decision_p50_ms'] = best.decisionP50Ms;
      results['at_sustained_decision_p99_ms'] = best.decisionP99Ms;
      for (const [name, pct] of Object.entries(best.cpuPct)) results[`at_sustained_cpu_${name}_pct`] = pct;
    }
    const failed = byRate.find((s) => !s.sustained);
    if (failed) {
      results['first_unsustained_events_per_s'] = failed.bulkRate;
      for (const g of GROUPS) results[`at_unsustained_lag_max_ms_${g}`] = failed.lag[g].maxMs;
      for (const [name, pct] of Object.entries(failed.cpuPct))
        results[`at_unsustained_cpu_${name}_pct`] = pct;
      results['at_unsustained_machine_busy_pct'] = failed.machineBusyPct;
    }

    // (2) Interactive logins at the target rate during the load.
    await drain(ctx, 120_000);
    const bulk = best
      ? Math.max(100, best.bulkRate + probeRate - interactiveTarget)
      : Math.max(100, Math.round(steps[0]! / 2));
    progress.note(`interactive: ${interactiveTarget} logins/s through the api + ${bulk} events/s bulk`);
    if (profileDir) services.toggleProfile();
    const target = await runStep(ctx, {
      bulkRate: bulk,
      interactiveRate: interactiveTarget,
      seconds,
      seed: 999,
    });
    if (profileDir) services.toggleProfile();
    results['interactive_offered_per_s'] = interactiveTarget;
    results['interactive_bulk_per_s'] = bulk;
    results['interactive_answered_per_s'] = target.decisionAnsweredPerS;
    results['interactive_decision_p50_ms'] = target.decisionP50Ms;
    results['interactive_decision_p99_ms'] = target.decisionP99Ms;
    results['interactive_decision_timeouts'] = target.decisionTimeouts;
    results['interactive_sender_max_delay_ms'] = target.interactiveSendDelayMaxMs;
    results['interactive_sustained'] = target.sustained ? 1 : 0;
    results['interactive_audit_row_lag_p99_ms'] = target.auditLagP99Ms;
    for (const g of GROUPS) results[`interactive_lag_max_ms_${g}`] = target.lag[g].maxMs;
    results['interactive_machine_busy_pct'] = target.machineBusyPct;
    for (const [name, pct] of Object.entries(target.cpuPct)) results[`interactive_cpu_${name}_pct`] = pct;

    // (3) Nothing lost.
    progress.note('checking that nothing was lost');
    // The counts mean something only once every group is at the end (1 here, else 0).
    results['loss_check_drained'] = Number.isFinite(await drain(ctx, 300_000)) ? 1 : 0;
    Object.assign(results, await countLosses(ctx));

    if (profileDir) {
      await services.stop();
      // Phases: one per ramp step, then the interactive one. Kept: the first step not
      // sustained (where the throughput target is missed) and the interactive phase.
      const unsustained = ramp.findIndex((s) => !s.sustained);
      const interactivePhase = ramp.length + 1;
      for (const p of services.profiles()) {
        const phase =
          p.phase === interactivePhase
            ? `${interactiveTarget} interactive logins/s + ${bulk} events/s`
            : p.phase === unsustained + 1
              ? `ramp step ${ramp[unsustained]!.bulkRate} events/s (first not sustained)`
              : undefined;
        if (phase) findings.addProfile({ bench: 'e2e', phase, service: p.service, summary: p });
      }
    }
    return results;
  } finally {
    if (load && load.exitCode === null) {
      load.send('stop');
      await Promise.race([once(load, 'exit'), sleep(5_000)]);
      load.kill('SIGKILL');
    }
    await lag?.close().catch(() => undefined);
    await services?.stop().catch(() => undefined);
    await pool.end().catch(() => undefined);
    await world.cleanup();
  }
}

interface StepContext {
  world: Isolated;
  services: BenchServices;
  load: ChildProcess;
  pool: Pool;
  groups: Groups;
  interactive: ReturnType<typeof createInteractiveApps>;
  lag: TimeLagTracker;
  shape: Shape;
  /** Events produced in this run, by type, to compare with what was stored. */
  produced: Record<string, number>;
  /** Interactive logins that got no answer: the api may or may not have published them. */
  unanswered: number;
}

async function seedVerifiedSessions(world: Isolated, count: number): Promise<void> {
  const redis = createRedis(world.config.redis.url, 'state', { commandTimeout: 30_000 });
  await waitForRedis(redis);
  try {
    for (let i = 0; i < count; i += 500) {
      await applySessionChanges(
        redis,
        world.config.redis.keyPrefix,
        Array.from({ length: Math.min(500, count - i) }, (_, j) => ({
          kind: 'validate' as const,
          session: hashSessionToken(mixSessionToken(i + j)),
          username: mixUser(i + j),
          appId: 'jira',
          at: Date.now(),
          eventId: randomUUID(),
        })),
        { ttlSeconds: 4 * 3600 },
      );
    }
  } finally {
    await redis.quit();
  }
}

/**
 * Apps that sign users in through the api and wait for the decision; a fifth of the users
 * challenged then type their code (a few mistype it first).
 */
function createInteractiveApps(apiUrl: string, keys: Record<string, string>, secret: string, shape: Shape) {
  let user = 0;
  let codeStep = -1;
  let code = '';
  const counts = { verified: 0, refused: 0, failedCodes: 0, challenged: 0, verifications: 0 };
  const currentCode = async () => {
    const step = Math.floor(Date.now() / 30_000);
    if (step !== codeStep) {
      code = await generateTotp(secret);
      codeStep = step;
    }
    return code;
  };
  const verify = async (appId: string, challengeId: string, submitted: string) => {
    counts.verifications++;
    const res = await fetch(`${apiUrl}/v1/challenges/${challengeId}/verify`, {
      method: 'POST',
      headers: { authorization: `Bearer ${keys[appId]}`, 'content-type': 'application/json' },
      body: JSON.stringify({ code: submitted }),
    }).catch(() => undefined);
    const body = res ? ((await res.json().catch(() => ({}))) as { verified?: boolean }) : {};
    if (body.verified) counts.verified++;
    else counts.refused++;
  };
  return {
    counts,
    run(rate: number, seconds: number): Promise<OpenLoopResult> {
      const pending: Promise<void>[] = [];
      const apps = new Map<number, string>();
      return runOpenLoop({
        baseUrl: apiUrl,
        rate,
        durationMs: seconds * 1000,
        request: (i) => {
          const appId = MIX_APPS[i % MIX_APPS.length]!;
          apps.set(i, appId);
          const idp = i % 5 === 4;
          return {
            method: 'POST',
            path: '/v1/login-events?wait=decision&timeoutMs=5000',
            headers: { authorization: `Bearer ${keys[appId]}` },
            body: JSON.stringify({
              type: 'twofold.login.succeeded',
              subject: idp
                ? `idp-user-${i}`
                : mixUser(shape.verifiedSessions + (user++ % (shape.enrolled - shape.verifiedSessions))),
              data: {
                appId,
                session: hashSessionToken(randomUUID()),
                method: idp ? 'sso' : 'password',
                ...(idp ? { idp: 'okta' } : {}),
                ip: `198.51.100.${(i % 250) + 1}`,
              },
            }),
          };
        },
        onResponse: (i, status, body) => {
          if (status !== 200) return;
          const decided = JSON.parse(body) as { decision: string; challengeId?: string };
          if (decided.decision !== 'challenge' || !decided.challengeId) return;
          counts.challenged++;
          if (i % 5 !== 0) return;
          const appId = apps.get(i)!;
          apps.delete(i);
          pending.push(
            (async () => {
              if (i % 50 === 0) {
                counts.failedCodes++;
                await verify(appId, decided.challengeId!, '000000');
              }
              await verify(appId, decided.challengeId!, await currentCode());
            })(),
          );
        },
      }).then(async (result) => {
        await Promise.all(pending);
        return result;
      });
    },
  };
}

async function lagsOf(ctx: StepContext) {
  const { kafka } = ctx.world;
  const [verifier, lockout, audit] = await Promise.all([
    groupLag(kafka, ctx.groups.verifier.id, ctx.groups.verifier.topics),
    groupLag(kafka, ctx.groups.lockout.id, ctx.groups.lockout.topics),
    groupLag(kafka, ctx.groups.audit.id, ctx.groups.audit.topics),
  ]);
  return { verifier, lockout, audit };
}

/** Waits until every group has consumed everything; returns the seconds it took. */
async function drain(ctx: StepContext, timeoutMs: number): Promise<number> {
  const start = performance.now();
  for (;;) {
    const lags = await lagsOf(ctx);
    if (lags.verifier === 0 && lags.lockout === 0 && lags.audit === 0)
      return (performance.now() - start) / 1000;
    if (performance.now() - start > timeoutMs) return Number.POSITIVE_INFINITY;
    await sleep(200);
  }
}

function cpuAll(services: BenchServices): Record<string, number> {
  return {
    ...services.cpu(),
    kafka: cpuMs(pidsOf('kafka.Kafka')[0]),
    redis: cpuMsOfAll('redis-server'),
    postgres: cpuMsOfAll('postgres'),
    load: cpuMs(process.pid) + cpuMsOfAll('login-load.process'),
  };
}

async function runStep(
  ctx: StepContext,
  step: { bulkRate: number; interactiveRate: number; seconds: number; seed: number },
): Promise<StepResult> {
  const startedAt = new Date();
  const cpu0 = cpuAll(ctx.services);
  const machine0 = machineCpuMs();
  ctx.lag.reset();
  const sampler = ctx.lag.start(250);
  const request: LoadRequest = {
    rate: step.bulkRate,
    seconds: step.seconds,
    seed: step.seed,
    enrolledUsers: ctx.shape.enrolled,
    verifiedSessions: ctx.shape.verifiedSessions,
  };
  const loadDone = once(ctx.load, 'message') as Promise<[LoadReport]>;
  ctx.load.send(request);
  const [interactive, [report]] = await Promise.all([
    ctx.interactive.run(step.interactiveRate, step.seconds),
    loadDone,
  ]);
  if (report.error) throw new Error(`load generator: ${report.error}`);
  for (const [type, n] of Object.entries(report.byType)) ctx.produced[type] = (ctx.produced[type] ?? 0) + n;
  // An answered login (decided, or 202: published, decision pending) was published; one
  // without an answer may or may not have been.
  const answered = (interactive.statuses['200'] ?? 0) + (interactive.statuses['202'] ?? 0);
  ctx.produced['twofold.login.succeeded'] = (ctx.produced['twofold.login.succeeded'] ?? 0) + answered;
  ctx.unanswered += interactive.sent - answered;
  const endedAt = new Date();
  const cpu1 = cpuAll(ctx.services);
  const machine1 = machineCpuMs();
  // Lag keeps being sampled while the groups drain what the step left.
  const drainS = await drain(ctx, 120_000);
  const cpu2 = cpuAll(ctx.services);
  await sampler.stop();
  const lagWindow = ctx.lag.window();
  const lag = Object.fromEntries(GROUPS.map((g) => [g, summarizeLag(lagWindow[g]!.samples)])) as Record<
    GroupName,
    { maxMs: number; p99Ms: number }
  >;
  const wall = (endedAt.getTime() - startedAt.getTime()) / 1000;
  const { rows } = await ctx.pool.query<{ p50: number; p99: number; max: number }>(
    `SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) AS p50, percentile_cont(0.99) WITHIN GROUP (ORDER BY ms) AS p99, max(ms) AS max
       FROM (SELECT extract(epoch FROM received_at - occurred_at) * 1000 AS ms FROM audit_events
              WHERE occurred_at >= $1 AND occurred_at < $2) AS lag`,
    [startedAt, endedAt],
  );
  const audit = rows[0] ?? { p50: NaN, p99: NaN, max: NaN };
  // The verifier's lag per event: its decision's time − the login's time (decision ids are
  // `decided-<login id>`), for every login of the step, bulk and interactive alike.
  const decided = await ctx.pool.query<{ p50: number; p99: number }>(
    `SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) AS p50, percentile_cont(0.99) WITHIN GROUP (ORDER BY ms) AS p99
       FROM (SELECT extract(epoch FROM d.occurred_at - l.occurred_at) * 1000 AS ms
               FROM audit_events l JOIN audit_events d ON d.event_id = 'decided-' || l.event_id
              WHERE l.type = 'twofold.login.succeeded' AND l.occurred_at >= $1 AND l.occurred_at < $2
                AND d.type = 'twofold.2fa.decided' AND d.occurred_at >= $1) AS lag`,
    [startedAt, endedAt],
  );
  const verifierLag = decided.rows[0] ?? { p50: NaN, p99: NaN };
  const problems: string[] = [];
  if (report.produced / report.seconds < step.bulkRate * 0.9)
    problems.push(`generator reached ${Math.round(report.produced / report.seconds)}/s`);
  for (const g of GROUPS)
    if (!(lag[g].maxMs < LAG_LIMIT_S * 1000)) problems.push(`${g} lag reached ${lag[g].maxMs} ms`);
  if (!(audit.p99 < LAG_LIMIT_S * 1000)) problems.push(`audit row lag p99 ${Math.round(audit.p99)} ms`);
  if (drainS > LAG_LIMIT_S) problems.push(`drained ${round(drainS, 1)} s after the end`);
  if (interactive.failed > 0 || (interactive.statuses['202'] ?? 0) > 0)
    problems.push(`${interactive.failed + (interactive.statuses['202'] ?? 0)} logins undecided in 5 s`);
  return {
    bulkRate: step.bulkRate,
    interactiveRate: step.interactiveRate,
    produced: report.produced,
    producedPerS: report.produced / report.seconds,
    generatorLagMs: report.maxLagMs,
    sustained: problems.length === 0,
    why: problems.join('; '),
    lag,
    drainS,
    verifierLagP50Ms: Math.round(Number(verifierLag.p50)),
    verifierLagP99Ms: Math.round(Number(verifierLag.p99)),
    interactiveSendDelayMaxMs: round(interactive.maxSendDelayMs),
    auditLagP50Ms: Math.round(Number(audit.p50)),
    auditLagP99Ms: Math.round(Number(audit.p99)),
    auditLagMaxMs: Math.round(Number(audit.max)),
    decisionP50Ms: round(percentile(interactive.latencies, 50)),
    decisionP99Ms: round(percentile(interactive.latencies, 99)),
    decisionAnsweredPerS: round((interactive.statuses['200'] ?? 0) / step.seconds),
    decisionTimeouts: (interactive.statuses['202'] ?? 0) + interactive.failed,
    cpuPct: Object.fromEntries(
      Object.entries(cpu1).map(([name, ms]) => [name, Math.round((ms - (cpu0[name] ?? 0)) / 10 / wall)]),
    ),
    cpuUsPerEvent: Object.fromEntries(
      Object.entries(cpu2).map(([name, ms]) => [
        name,
        Math.round(((ms - (cpu0[name] ?? 0)) * 1000) / Math.max(1, report.produced + interactive.sent)),
      ]),
    ),
    machineBusyPct: Math.round(((machine1.busy - machine0.busy) / (machine1.total - machine0.total)) * 100),
  };
}

/**
 * CPU (µs) per login event of twofold and the parts under it (not the load generators),
 * and the rate the machine's cores could carry at that cost with nothing else on it. The
 * shared broker, Redis and Postgres also serve other people's tests, and at a low rate the
 * services' fixed costs (polls, heartbeats, metrics) are shared by few events, so it is an
 * upper bound of the cost (a lower bound of the capacity), closest at the highest step.
 */
function capacityOf(step: StepResult): { usPerEvent: number; eventsPerS: number } {
  const usPerEvent = Object.entries(step.cpuUsPerEvent)
    .filter(([name, us]) => name !== 'load' && Number.isFinite(us))
    .reduce((sum, [, us]) => sum + us, 0);
  return { usPerEvent, eventsPerS: Math.round((cpus().length * 1e6) / Math.max(1, usPerEvent)) };
}

/**
 * Compares what was produced with what each consumer did, once everything drained. Rows
 * are counted by distinct event id (a second row of one id is a duplicate, reported apart);
 * interactive logins without an answer widen the expected counts into a range.
 */
async function countLosses(ctx: StepContext): Promise<Record<string, number>> {
  const { rows } = await ctx.pool.query<{ type: string; n: string; ids: string }>(
    'SELECT type, count(*) AS n, count(DISTINCT event_id) AS ids FROM audit_events GROUP BY type',
  );
  const ids = Object.fromEntries(rows.map((r) => [r.type, Number(r.ids)]));
  // The detector counts a code failure only when it is a guess (bad or replayed code);
  // `expired` and `locked` are not attempts at the secret (lockout-signal.ts).
  const codeFailures = await ctx.pool.query<{ guesses: string; other: string }>(
    `SELECT count(DISTINCT event_id) FILTER (WHERE reason IN ('bad_code', 'replayed')) AS guesses,
            count(DISTINCT event_id) FILTER (WHERE reason IS NULL OR reason NOT IN ('bad_code', 'replayed')) AS other
       FROM audit_events WHERE type = 'twofold.2fa.failed'`,
  );
  const codeGuesses = Number(codeFailures.rows[0]?.guesses ?? 0);
  const duplicates = rows.reduce((n, r) => n + Number(r.n) - Number(r.ids), 0);
  const produced = ctx.produced;
  const loginTypes = ['twofold.login.succeeded', 'twofold.login.failed', 'twofold.logout'];
  const loginsMin = loginTypes.reduce((n, type) => n + (produced[type] ?? 0), 0);
  const loginsMax = loginsMin + ctx.unanswered;
  const storedLogins = loginTypes.reduce((n, type) => n + (ids[type] ?? 0), 0);
  const decisionsMin = produced['twofold.login.succeeded'] ?? 0;
  const decisionsMax = decisionsMin + ctx.unanswered;
  const storedDecisions = ids['twofold.2fa.decided'] ?? 0;
  const verifierMetrics = await ctx.services.metrics('verifier');
  const lockoutMetrics = await ctx.services.metrics('lockout-detector');
  const failuresCounted = metricSum(lockoutMetrics, 'twofold_lockout_failures_total', { outcome: 'counted' });
  const failuresProduced = (produced['twofold.login.failed'] ?? 0) + codeGuesses;
  const dlq = ctx.world.kafka.admin();
  await dlq.connect();
  const dlqOffsets = await dlq.fetchTopicOffsets(ctx.world.topics.dlq);
  await dlq.disconnect();
  return {
    events_produced: loginsMin,
    interactive_logins_unanswered: ctx.unanswered,
    audit_login_ids: storedLogins,
    audit_login_ids_missing: Math.max(0, loginsMin - storedLogins),
    audit_login_ids_unexpected: Math.max(0, storedLogins - loginsMax),
    audit_duplicate_rows: duplicates,
    decisions_expected: decisionsMin,
    decisions_made: metricSum(verifierMetrics, 'twofold_decisions_total'),
    decisions_stored: storedDecisions,
    decisions_missing: Math.max(0, decisionsMin - storedDecisions),
    decisions_unexpected: Math.max(0, storedDecisions - decisionsMax),
    failures_produced: failuresProduced,
    failures_counted: failuresCounted,
    failures_counted_again_as_duplicates: metricSum(lockoutMetrics, 'twofold_lockout_failures_total', {
      outcome: 'duplicate',
    }),
    failures_uncounted: failuresProduced - failuresCounted,
    code_failures_not_guesses: Number(codeFailures.rows[0]?.other ?? 0),
    codes_verified_stored: ids['twofold.2fa.verified'] ?? 0,
    lockouts_imposed_stored: ids['twofold.lockout.imposed'] ?? 0,
    dlq_messages: dlqOffsets.reduce((n, p) => n + Number(p.high), 0),
  };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const figures = await runEndToEndBench({ quick: process.argv.includes('--quick') });
  progress.done();
  process.stdout.write(`${JSON.stringify(figures, null, 2)}\n`);
}
