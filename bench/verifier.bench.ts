// The verifier's benchmark (issue 3): login-decision latency through Kafka, and code
// verifications per second.
//
// The api and the verifier run as deployed (their main.ts, one process each) in an
// isolated world of the local stack (own topics with 12 partitions, own consumer group,
// own Redis prefix and Postgres schema).
//
// 1. Decisions: apps post successful logins to `POST /v1/login-events?wait=decision` at a
//    steady 1,000/s (open loop: each latency counts from when its request was due, so a
//    stall is not hidden by a slower load). Each answer crosses Kafka twice (api →
//    twofold.login.v1 → verifier → twofold.2fa.v1, and Redis pub/sub back to the api). The
//    mix: 70 % local logins of enrolled users (challenge), 20 % IdP logins (skip/sso),
//    10 % users not enrolled (enroll).
// 2. Verifications over HTTP: every challenge of (1) answered with its right code through
//    `POST /v1/challenges/{id}/verify`, as fast as 64 connections go (autocannon). Each is a
//    challenge attempt and lock read (Redis), the enrollment (Postgres), AES-GCM decryption,
//    TOTP, the replay guard (Redis) and the `2fa.verified` event (Kafka). The per-app rate
//    limit (60,000 a minute by default) is off here: the figure is the capacity.
// 3. Verifications in-process: the same code verifier without HTTP, to split the cost.
//
// Run: `node --conditions=twofold-source --import tsx bench/verifier.bench.ts [--quick]`.
// BENCH_VERIFIER_RATE (default 1000), BENCH_VERIFIER_SECONDS (default 20),
// BENCH_CPU_PROFILE=<dir> (CPU profiles of the api and verifier during phases 1 and 2, summarized).
// BENCH_SERVICES=dist runs the compiled services, as production does (see lib/services.ts).
import { randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { hashSessionToken } from '@twofold/contracts';
import { generateSecret, generateTotp } from '@twofold/otp';
import { createRedis, waitForRedis } from '@twofold/redis';
import { CHALLENGE_MAX_ATTEMPTS, createChallengeStore, enrollmentVersions } from '@twofold/state';
import { createEnrollmentsRepository, createPool } from '@twofold/store';
import { createCodeVerifier } from '@twofold/verification';
import { readLockForVerification } from '../services/api/src/lock-reader.js';
import { sendRequests } from './lib/autocannon.js';
import { runOpenLoop } from './lib/open-loop.js';
import { cpuMs, cpuMsOfAll, pidsOf, sleep } from './lib/processes.js';
import { findings } from './lib/findings.js';
import { progress } from './lib/progress.js';
import { keyRingFromEnv, registerApps, seedEnrollments } from './lib/seed.js';
import { startBenchServices } from './lib/services.js';
import { metricSum, percentile, round } from './lib/stats.js';
import { benchWorld } from './lib/world.js';

type Decided = { decision: string; reason: string; challengeId?: string; loginEventId: string };

export async function runVerifierBench(opts: { quick: boolean }): Promise<Record<string, number>> {
  const rate = Number(process.env['BENCH_VERIFIER_RATE'] ?? 1_000);
  const seconds = opts.quick ? 3 : Number(process.env['BENCH_VERIFIER_SECONDS'] ?? 20);
  const profileDir = process.env['BENCH_CPU_PROFILE']
    ? mkdtempSync(join(process.env['BENCH_CPU_PROFILE'], 'verifier-'))
    : undefined;
  const logins = Math.floor(rate * seconds);
  const enrolledUsers = Math.ceil(logins * 0.7) + 1_000;

  progress.note('setting up (world, api and verifier processes)');
  const world = await benchWorld('bench-verifier', { database: true });
  const services = await startBenchServices(world, ['api', 'verifier'], {
    env: { RATE_LIMIT_VERIFY_PER_APP: '0' },
    ...(profileDir ? { profileDir } : {}),
  });
  const pool = createPool({ url: world.config.database.url, schema: world.config.database.schema, max: 8 });
  const redis = createRedis(world.config.redis.url, 'state', { commandTimeout: 10_000 });
  await waitForRedis(redis);
  const results: Record<string, number> = {};
  try {
    const keys = await registerApps(services.apiUrl, world.env['TWOFOLD_ADMIN_KEY']!, ['jira']);
    const headers = { authorization: `Bearer ${keys['jira']}` };
    const secret = generateSecret();
    const keyRing = keyRingFromEnv(world.env);
    progress.note(`enrolling ${enrolledUsers} users`);
    const users = Array.from({ length: enrolledUsers }, (_, i) => `bench-user-${i}`);
    await seedEnrollments(pool, keyRing, users, secret);

    let nextUser = 0;
    const loginBody = (i: number) => {
      const kind = i % 10; // 0-6 local enrolled, 7-8 IdP, 9 not enrolled
      const username =
        kind <= 6 ? users[nextUser++ % users.length]! : kind <= 8 ? `idp-user-${i}` : `new-user-${i}`;
      return JSON.stringify({
        type: 'twofold.login.succeeded',
        subject: username,
        data: {
          appId: 'jira',
          session: hashSessionToken(randomUUID()),
          method: kind === 7 || kind === 8 ? 'sso' : 'password',
          ...(kind === 7 || kind === 8 ? { idp: 'okta' } : {}),
          ip: `198.51.100.${(i % 250) + 1}`,
        },
      });
    };
    const path = '/v1/login-events?wait=decision&timeoutMs=5000';

    // Warm-up at the measured rate: stepping from 200/s straight to the target, a few
    // hundred requests of the first second took 1.0–1.7 s on the client while the api's own
    // timing (twofold_http_request_duration_seconds) had every one under 250 ms and its
    // event loop lag stayed under 130 ms: the wait was outside twofold's processes (the
    // kernel counted TCP retransmissions in those runs; a fresh connection retransmits after
    // 1 s). The target is the steady state at that rate.
    progress.note(`warming up (${rate} logins/s)`);
    await runOpenLoop({
      baseUrl: services.apiUrl,
      rate,
      durationMs: opts.quick ? 1_000 : 3_000,
      request: (i) => ({ method: 'POST', path, headers, body: loginBody(i) }),
    });

    // (1) Decisions at the target rate.
    progress.note(`decisions: ${rate} logins/s for ${seconds} s`);
    const decided: Decided[] = [];
    const mix: Record<string, number> = {};
    const verifierMetrics0 = await services.metrics('verifier');
    const cpu0 = cpuSnapshot(services.cpu());
    if (profileDir) services.toggleProfile();
    const load = await runOpenLoop({
      baseUrl: services.apiUrl,
      rate,
      durationMs: seconds * 1000,
      request: (i) => ({ method: 'POST', path, headers, body: loginBody(i + 1_000_000) }),
      onResponse: (_i, status, body) => {
        if (status !== 200) return;
        const d = JSON.parse(body) as Decided;
        decided.push(d);
        mix[`${d.decision}/${d.reason}`] = (mix[`${d.decision}/${d.reason}`] ?? 0) + 1;
      },
    });
    if (profileDir) services.toggleProfile();
    const cpu1 = cpuSnapshot(services.cpu());
    const verifierMetrics1 = await services.metrics('verifier');
    results['decision_offered_per_s'] = rate;
    results['decision_answered_per_s'] = round(load.answered / load.seconds);
    results['decision_p50_ms'] = round(percentile(load.latencies, 50));
    results['decision_p90_ms'] = round(percentile(load.latencies, 90));
    results['decision_p99_ms'] = round(percentile(load.latencies, 99));
    results['decision_max_ms'] = round(Math.max(...load.latencies));
    results['decision_timeouts_202'] = load.statuses['202'] ?? 0;
    results['decision_errors'] =
      load.failed + Object.entries(load.statuses).reduce((n, [s, c]) => (s[0] !== '2' ? n + c : n), 0);
    results['decision_sender_max_delay_ms'] = round(load.maxSendDelayMs);
    for (const [what, n] of Object.entries(mix)) results[`decision_mix_${what.replace('/', '_')}`] = n;
    // The verifier's share: from the login event's time (stamped by the api) to the decision published.
    const inVerifier = (text0: string, text1: string) =>
      ((metricSum(text1, 'twofold_decision_latency_seconds_sum') -
        metricSum(text0, 'twofold_decision_latency_seconds_sum')) /
        Math.max(
          1,
          metricSum(text1, 'twofold_decision_latency_seconds_count') -
            metricSum(text0, 'twofold_decision_latency_seconds_count'),
        )) *
      1000;
    results['decision_event_to_published_mean_ms'] = round(inVerifier(verifierMetrics0, verifierMetrics1));
    const wall = load.seconds;
    for (const [name, ms] of Object.entries(cpu1)) {
      results[`decision_cpu_${name}_pct`] = Math.round((ms - (cpu0[name] ?? 0)) / 10 / wall);
      results[`decision_cpu_${name}_us_per_login`] = Math.round(
        ((ms - (cpu0[name] ?? 0)) * 1000) / Math.max(1, load.answered),
      );
    }

    // (2) Verifications over HTTP: every challenge of (1), each with its right code.
    const challenges = decided.filter((d) => d.decision === 'challenge' && d.challengeId);
    const code = await generateTotp(secret);
    const codeAt = Date.now();
    progress.note(`verifications over HTTP: ${challenges.length} challenges`);
    let v = 0;
    let verified = 0;
    let refused = 0;
    const refusals: Record<string, number> = {};
    const cpuV0 = cpuSnapshot(services.cpu());
    if (profileDir) services.toggleProfile();
    const verify = await sendRequests({
      url: services.apiUrl,
      amount: challenges.length,
      connections: opts.quick ? 16 : 64,
      requests: [
        {
          method: 'POST',
          setupRequest: (request) => ({
            ...request,
            path: `/v1/challenges/${challenges[v++ % challenges.length]!.challengeId}/verify`,
            headers: { ...headers, 'content-type': 'application/json' },
            body: JSON.stringify({ code }),
          }),
          onResponse: (status, body) => {
            if (status === 200 && body.includes('"verified":true')) verified++;
            else {
              refused++;
              const why = status === 200 ? (/"reason":"(\w+)"/.exec(body)?.[1] ?? 'other') : String(status);
              refusals[why] = (refusals[why] ?? 0) + 1;
            }
          },
        },
      ],
    });
    if (profileDir) services.toggleProfile();
    const cpuV1 = cpuSnapshot(services.cpu());
    results['verify_http_per_s'] = Math.round(verify.perSecond);
    results['verify_http_p50_ms'] = verify.latency.p50;
    results['verify_http_p99_ms'] = verify.latency.p99;
    results['verify_http_verified'] = verified;
    results['verify_http_refused'] = refused + verify.errors + verify.timeouts;
    for (const [why, n] of Object.entries(refusals)) results[`verify_http_refused_${why}`] = n;
    if (verify.errors + verify.timeouts > 0)
      results['verify_http_refused_no_answer'] = verify.errors + verify.timeouts;
    for (const [name, ms] of Object.entries(cpuV1)) {
      results[`verify_http_cpu_${name}_pct`] = Math.round((ms - (cpuV0[name] ?? 0)) / 10 / verify.seconds);
      results[`verify_http_cpu_${name}_us_per_verification`] = Math.round(
        ((ms - (cpuV0[name] ?? 0)) * 1000) / Math.max(1, verify.requests.total),
      );
    }

    // (3) The same verifications in this process, without HTTP (fresh challenges, the next step's code).
    const coreCount = opts.quick ? 1_000 : Math.min(challenges.length, 10_000);
    progress.note(`verifications in-process: ${coreCount}`);
    // As the verifier makes them: with the user's enrollment version read before.
    const store = createChallengeStore(redis, world.config.redis.keyPrefix);
    const coreUsers = users.slice(0, coreCount);
    const versions = await enrollmentVersions(redis, world.config.redis.keyPrefix, coreUsers);
    const fresh = await Promise.all(
      coreUsers.map((username, i) =>
        store.create({
          username,
          appId: 'jira',
          session: hashSessionToken(randomUUID()),
          ip: '198.51.100.1',
          loginEventId: randomUUID(),
          ...(versions[i] ? { enrollmentVersion: versions[i] } : {}),
        }),
      ),
    );
    const nextCode = await generateTotp(secret, { now: codeAt + 30_000 });
    const coreVerifier = createCodeVerifier({
      challenges: store,
      enrollments: createEnrollmentsRepository(pool),
      keyRing,
      redis,
      keyPrefix: world.config.redis.keyPrefix,
      producer: world.producer,
      readLock: readLockForVerification(redis, world.config.redis.keyPrefix),
      maxAttempts: CHALLENGE_MAX_ATTEMPTS,
    });
    let coreNext = 0;
    let coreVerified = 0;
    const coreStart = performance.now();
    const coreCpu0 = process.cpuUsage();
    await Promise.all(
      Array.from({ length: 64 }, async () => {
        while (coreNext < fresh.length) {
          const challenge = fresh[coreNext++]!;
          const result = await coreVerifier.verify(challenge.challengeId, nextCode, { appId: 'jira' });
          if (result.verified) coreVerified++;
        }
      }),
    );
    const coreSeconds = (performance.now() - coreStart) / 1000;
    const coreCpu = process.cpuUsage(coreCpu0);
    results['verify_core_per_s'] = Math.round(fresh.length / coreSeconds);
    results['verify_core_verified'] = coreVerified;
    results['verify_core_cpu_us_per_verification'] = Math.round(
      (coreCpu.user + coreCpu.system) / fresh.length,
    );

    if (profileDir) {
      await services.stop();
      for (const p of services.profiles()) {
        const phase = p.phase === 1 ? `decisions at ${rate}/s` : 'verifications over HTTP';
        findings.addProfile({ bench: 'verifier', phase, service: p.service, summary: p });
        progress.log(`profile of ${p.service} (${phase}): ${JSON.stringify(p.byArea.slice(0, 6))}`);
      }
    }
    return results;
  } finally {
    await redis.quit().catch(() => undefined);
    await pool.end().catch(() => undefined);
    await services.stop().catch(() => undefined);
    await world.cleanup();
  }
}

/** CPU (ms) of the service processes, the broker, Redis, Postgres backends and this process. */
function cpuSnapshot(services: Record<string, number>): Record<string, number> {
  return {
    ...services,
    kafka: cpuMs(pidsOf('kafka.Kafka')[0]),
    redis: cpuMsOfAll('redis-server'),
    postgres: cpuMsOfAll('postgres'),
    load: cpuMs(process.pid),
  };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const figures = await runVerifierBench({ quick: process.argv.includes('--quick') });
  progress.done();
  process.stdout.write(`${JSON.stringify(figures, null, 2)}\n`);
  await sleep(0);
}
