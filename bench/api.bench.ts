// The api's two hot routes under autocannon, against the real api process (its main.ts, with
// its rate limits on, counted in Redis) in an isolated world of the local stack:
//
// - GET /v1/sessions/current — what every app asks on every page view; half the sessions
//   are verified (seeded in Redis as the broadcaster writes them), half unknown.
// - POST /v1/challenges/{id}/verify — a right code per request, each for its own user and
//   challenge (so the replay guard accepts it): challenge attempt, lock read, enrollment
//   from Postgres, decryption, TOTP, replay guard, and the 2fa.verified event to Kafka.
//
// Run: `node --conditions=twofold-source --import tsx bench/api.bench.ts [--quick]`.
import { randomUUID } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import { hashSessionToken } from '@twofold/contracts';
import { createSecretKeyRing, encryptSecret, generateSecret, generateTotp } from '@twofold/otp';
import { createRedis, waitForRedis } from '@twofold/redis';
import { applySessionChanges, createChallengeStore } from '@twofold/state';
import { createEnrollmentsRepository, createPool } from '@twofold/store';
import { apiClient, startServices } from '../test/support/services.js';
import { isolated } from '../test/support/stack.js';
import { autocannon, sendRequests, type AutocannonResult } from './lib/autocannon.js';

interface Measured {
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  non2xx: number;
}

/** Rates of a fixed amount come from the time to its last response (see sendRequests). */
function summarize(result: AutocannonResult & { perSecond?: number }): Measured {
  return {
    rps: Math.round(result.perSecond ?? result.requests.total / result.duration),
    p50: result.latency.p50,
    p99: result.latency.p99,
    errors: result.errors + result.timeouts,
    non2xx: result.non2xx,
  };
}

/** Runs the benchmark; figures are requests/s and latency in ms (2 shared cores: indicative). */
export async function runApiBench(opts: { quick: boolean }): Promise<Record<string, number>> {
  const users = opts.quick ? 400 : 4_000;
  const sessions = 1_000;
  const duration = opts.quick ? 3 : 10;
  const connections = opts.quick ? 16 : 32;

  const world = await isolated('bench-api', { database: true });
  const services = await startServices(world, ['api'], { LOG_LEVEL: 'error' });
  const redis = createRedis(world.env['REDIS_URL']!, 'state');
  await waitForRedis(redis);
  const pool = createPool({ url: world.config.database.url, schema: world.config.database.schema, max: 4 });
  try {
    const { key } = (
      await apiClient(services.apiUrl, world.env['TWOFOLD_ADMIN_KEY'])<{ key: string }>(
        'POST',
        '/v1/admin/apps',
        {
          appId: 'jira',
        },
      )
    ).body;
    const prefix = world.config.redis.keyPrefix;

    // Sessions: half verified.
    const tokens = Array.from({ length: sessions }, () => randomUUID());
    await applySessionChanges(
      redis,
      prefix,
      tokens.slice(0, sessions / 2).map((token, i) => ({
        kind: 'validate' as const,
        session: hashSessionToken(token),
        username: `user-${i}`,
        appId: 'jira',
        at: Date.now(),
        eventId: randomUUID(),
      })),
      { ttlSeconds: 3600 },
    );

    // Users, one secret each (encrypted under the stack's key), and a challenge per user.
    const ring = world.env['TWOFOLD_MASTER_KEYS']!.split(',').map((entry) => entry.split(':'));
    const keyRing = createSecretKeyRing(
      new Map(ring.map(([id, k]) => [id!, Buffer.from(k!, 'base64')])),
      world.env['TWOFOLD_ACTIVE_KEY_ID']!,
    );
    const enrollments = createEnrollmentsRepository(pool);
    const challenges = createChallengeStore(redis, prefix);
    const secret = generateSecret();
    const targets: { challengeId: string }[] = [];
    for (let i = 0; i < users; i += 50) {
      await Promise.all(
        Array.from({ length: Math.min(50, users - i) }, async (_, j) => {
          const username = `bench-${i + j}`;
          await enrollments.activate({
            username,
            secretCiphertext: encryptSecret(keyRing, username, secret),
            algorithm: 'SHA1',
            digits: 6,
            period: 30,
            origin: 'imported',
            backupCodeHashes: [],
          });
          const challenge = await challenges.create({
            username,
            appId: 'jira',
            session: hashSessionToken(randomUUID()),
            ip: '198.51.100.1',
            loginEventId: randomUUID(),
          });
          targets.push({ challengeId: challenge.challengeId });
        }),
      );
    }

    const headers = { authorization: `Bearer ${key}`, 'content-type': 'application/json' };
    // Warm up (connections, JIT, the app key cache).
    await autocannon({
      url: `${services.apiUrl}/v1/sessions/current`,
      duration: 1,
      connections: 4,
      headers: { ...headers, 'x-twofold-session': tokens[0]! },
    });

    let s = 0;
    const sessionResult = summarize(
      await autocannon({
        url: services.apiUrl,
        duration,
        connections,
        requests: [
          {
            method: 'GET',
            path: '/v1/sessions/current',
            setupRequest: (request) => ({
              ...request,
              headers: { ...headers, 'x-twofold-session': tokens[s++ % tokens.length]! },
            }),
          },
        ],
      }),
    );

    const code = await generateTotp(secret);
    let v = 0;
    const verifyResult = summarize(
      await sendRequests({
        url: services.apiUrl,
        amount: users,
        connections,
        requests: [
          {
            method: 'POST',
            setupRequest: (request) => ({
              ...request,
              path: `/v1/challenges/${targets[v++ % targets.length]!.challengeId}/verify`,
              headers,
              body: JSON.stringify({ code }),
            }),
          },
        ],
      }),
    );
    // Every challenge answered: a verified one is deleted.
    let unanswered = 0;
    for (let i = 0; i < targets.length; i += 200) {
      const left = await Promise.all(targets.slice(i, i + 200).map((t) => challenges.get(t.challengeId)));
      unanswered += left.filter(Boolean).length;
    }

    return {
      sessions_current_rps: sessionResult.rps,
      sessions_current_p50_ms: sessionResult.p50,
      sessions_current_p99_ms: sessionResult.p99,
      sessions_current_errors: sessionResult.errors + sessionResult.non2xx,
      verify_rps: verifyResult.rps,
      verify_p50_ms: verifyResult.p50,
      verify_p99_ms: verifyResult.p99,
      verify_errors: verifyResult.errors + verifyResult.non2xx,
      /** Challenges left unanswered (should be 0: every request verified its code). */
      verify_unanswered: unanswered,
      connections,
    };
  } finally {
    await redis.quit();
    await pool.end();
    await services.stop();
    await world.cleanup();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const figures = await runApiBench({ quick: process.argv.includes('--quick') });
  process.stdout.write(`${JSON.stringify(figures, null, 2)}\n`);
}
