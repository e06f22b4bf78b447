import { createHash } from 'node:crypto';
import rateLimit from '@fastify/rate-limit';
import type { FastifyInstance, FastifyRequest, onRequestAsyncHookHandler } from 'fastify';
import type { Redis } from '@twofold/redis';
import { Problem } from '../problem.js';
import { leasedRedisStore } from './rate-limit.store.js';

/** Requests per minute; 0 turns a limit off. */
export interface RateLimits {
  /** Code submissions per challenge (the API and the hosted page together), and per pending enrollment. */
  verifyPerChallenge: number;
  /** Code verifications and enrollment calls per app key. */
  verifyPerApp: number;
  /** Login events per app key. */
  eventsPerApp: number;
}

export const DEFAULT_RATE_LIMITS: RateLimits = Object.freeze({
  verifyPerChallenge: 10,
  verifyPerApp: 60_000,
  eventsPerApp: 300_000,
});

/** Largest body per route (bytes); routes not listed keep the server's 64 KiB (an event's maximum). */
export const BODY_LIMITS: Readonly<Record<string, number>> = Object.freeze({
  'POST /v1/challenges/:challengeId/verify': 1024,
  'POST /v1/enrollments': 4096,
  'POST /v1/enrollments/:enrollmentId/confirm': 1024,
  'POST /v1/enrollments/import': 4096,
  'POST /2fa/:challengeId': 4096,
  'POST /enroll/:enrollmentId': 4096,
  'PUT /v1/admin/policy': 16_384,
  'PUT /v1/admin/policy/:kind/:subject': 1024,
  'POST /v1/admin/apps': 16_384,
});

type Scope = 'challenge' | 'enrollment' | 'app';
interface Rule {
  scope: Scope;
  limit: keyof RateLimits;
  /** Counters shared by routes: a challenge's attempts count the same on the API and the page. */
  bucket: string;
}

const RULES: Readonly<Record<string, readonly Rule[]>> = {
  'POST /v1/challenges/:challengeId/verify': [
    { scope: 'challenge', limit: 'verifyPerChallenge', bucket: 'verify' },
    { scope: 'app', limit: 'verifyPerApp', bucket: 'verify-app' },
  ],
  'POST /2fa/:challengeId': [{ scope: 'challenge', limit: 'verifyPerChallenge', bucket: 'verify' }],
  'POST /v1/enrollments/:enrollmentId/confirm': [
    { scope: 'enrollment', limit: 'verifyPerChallenge', bucket: 'enroll' },
    { scope: 'app', limit: 'verifyPerApp', bucket: 'verify-app' },
  ],
  'POST /enroll/:enrollmentId': [{ scope: 'enrollment', limit: 'verifyPerChallenge', bucket: 'enroll' }],
  'POST /v1/enrollments': [{ scope: 'app', limit: 'verifyPerApp', bucket: 'verify-app' }],
  'POST /v1/enrollments/import': [{ scope: 'app', limit: 'verifyPerApp', bucket: 'verify-app' }],
  'POST /v1/login-events': [{ scope: 'app', limit: 'eventsPerApp', bucket: 'events' }],
};

const WHAT: Record<string, string> = {
  verify: 'too many codes were submitted for this challenge',
  enroll: 'too many codes were submitted for this enrollment',
  'verify-app': 'this app verifies codes faster than its limit allows',
  events: 'this app publishes login events faster than its limit allows',
};

/** The app's key, hashed: counters are per app without a database lookup, and no key lands in Redis. */
function appKeyOf(request: FastifyRequest): string | undefined {
  const match = /^Bearer\s+(\S+)$/i.exec(request.headers.authorization ?? '');
  return match ? createHash('sha256').update(match[1]!).digest('base64url').slice(0, 22) : undefined;
}

function subjectOf(request: FastifyRequest, scope: Scope): string | undefined {
  const params = request.params as Record<string, string | undefined>;
  if (scope === 'challenge') return params['challengeId'];
  if (scope === 'enrollment') return params['enrollmentId'];
  return appKeyOf(request);
}

/**
 * Body size limits per route and rate limits keyed by what is attacked — the challenge,
 * the enrollment, the app key — never by client IP: apps call from a few servers, and an
 * attacker behind many IPs still targets one challenge. Counters live in Redis so every
 * replica shares them, claimed in blocks for the large per-app limits (see rate-limit.store.ts);
 * when Redis fails, requests pass (the code verifier itself fails closed).
 */
export async function registerRequestLimits(
  app: FastifyInstance,
  options: { limits: RateLimits; redis?: Redis; keyPrefix?: string },
): Promise<void> {
  await app.register(rateLimit, {
    global: false,
    skipOnError: true,
    ...(options.redis ? { store: leasedRedisStore(options.redis, `${options.keyPrefix ?? ''}rate:`) } : {}),
  });

  const limiters = new Map<string, ReturnType<typeof app.createRateLimit>>();
  const limiterFor = (rule: Rule) => {
    const id = `${rule.bucket}:${rule.limit}`;
    let limiter = limiters.get(id);
    if (!limiter) {
      limiter = app.createRateLimit({
        max: options.limits[rule.limit],
        timeWindow: 60_000,
        keyGenerator: (request) => `${rule.bucket}:${subjectOf(request, rule.scope) ?? ''}`,
      });
      limiters.set(id, limiter);
    }
    return limiter;
  };

  app.addHook('onRoute', (route) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    for (const method of methods) {
      const id = `${method} ${route.url}`;
      const bodyLimit = BODY_LIMITS[id];
      if (bodyLimit !== undefined && route.bodyLimit === undefined) route.bodyLimit = bodyLimit;
      const rules = (RULES[id] ?? []).filter((rule) => options.limits[rule.limit] > 0);
      if (rules.length === 0) continue;
      const limit: onRequestAsyncHookHandler = async (request, reply) => {
        for (const rule of rules) {
          if (subjectOf(request, rule.scope) === undefined) continue; // no key: the route answers 401
          const result = await limiterFor(rule)(request);
          if (result.isAllowed || !result.isExceeded) continue;
          const seconds = Math.max(1, result.ttlInSeconds);
          reply.header('retry-after', seconds);
          throw new Problem(
            429,
            'rate-limited',
            'Too Many Requests',
            `${WHAT[rule.bucket]} (${options.limits[rule.limit]} per minute); try again in ${seconds} s`,
            { retryAfterSeconds: seconds },
          );
        }
      };
      route.onRequest = [...(route.onRequest ? [route.onRequest].flat() : []), limit];
    }
  });
}
