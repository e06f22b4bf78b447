import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import {
  REFRESH_DEADLINE_MS,
  answerWithin,
  hashApiKey,
  refreshEvery,
  type AppRecord,
  type AppsRepository,
} from '@twofold/store';
import { problems } from './problem.js';

function bearer(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (!header) return undefined;
  const match = /^Bearer\s+(\S+)$/i.exec(header);
  return match?.[1];
}

const digest = (value: string) => createHash('sha256').update(value).digest();

/**
 * App and admin authentication. App keys are looked up by hash and cached briefly so the
 * event intake does not hit Postgres per request. Once started, a cheap check of the apps
 * version every `refreshMs` (a trigger bumps it on every change to apps) drops the cache
 * when it moved, so a key rotated through any replica is refused by all within a second.
 */
export function createAuthenticator(deps: {
  apps: AppsRepository;
  adminKey: string;
  cacheMs?: number;
  refreshMs?: number;
  /** Longest one version check is waited for (ms; REFRESH_DEADLINE_MS). */
  refreshDeadlineMs?: number;
  onRefreshError?: (err: unknown) => void;
}) {
  const adminDigest = digest(deps.adminKey);
  const refreshDeadlineMs = deps.refreshDeadlineMs ?? REFRESH_DEADLINE_MS;
  const cacheMs = deps.cacheMs ?? 30_000;
  const cache = new Map<string, { app: AppRecord | undefined; until: number }>();
  // Bumped on every clear: a lookup that started before a clear may have read the old row,
  // so its answer is not kept.
  let generation = 0;
  let appsVersion: string | undefined;
  let loop: ReturnType<typeof refreshEvery> | undefined;
  let refreshFailing = false;

  function forget(): void {
    generation++;
    cache.clear();
  }

  async function appOf(key: string): Promise<AppRecord | undefined> {
    const keyHash = hashApiKey(key);
    let entry = cache.get(keyHash);
    if (!entry || entry.until < Date.now()) {
      const startedIn = generation;
      entry = { app: await deps.apps.findByKeyHash(keyHash), until: Date.now() + cacheMs };
      if (startedIn === generation) {
        if (cache.size > 10_000) cache.clear();
        cache.set(keyHash, entry);
      }
    }
    return entry.app;
  }

  /** Drops the cache when the apps version moved; keeps it (TTL-bound) when it cannot be read. */
  async function refresh(): Promise<void> {
    try {
      const version = await answerWithin(deps.apps.version(), refreshDeadlineMs, 'the apps version');
      refreshFailing = false;
      if (version === appsVersion) return;
      appsVersion = version;
      forget();
    } catch (err) {
      if (!refreshFailing) deps.onRefreshError?.(err);
      refreshFailing = true;
    }
  }

  return {
    /** The calling app; throws 401 (no or unknown key) or 403 (the admin key is not an app). */
    async requireApp(request: FastifyRequest): Promise<AppRecord> {
      const key = bearer(request);
      if (!key) throw problems.unauthorized('send the app key as "Authorization: Bearer <app key>"');
      const app = await appOf(key);
      if (!app) {
        if (timingSafeEqual(digest(key), adminDigest)) {
          throw problems.forbidden('this route takes an app key; the admin key is for /v1/admin routes');
        }
        throw problems.unauthorized('the app key is not valid; register the app with POST /v1/admin/apps');
      }
      return app;
    },
    /** Throws 401 (no or unknown key) or 403 (an app key) unless the caller presents the admin key. */
    async requireAdmin(request: FastifyRequest): Promise<void> {
      const key = bearer(request);
      if (!key) throw problems.unauthorized('send the admin key as "Authorization: Bearer <admin key>"');
      if (timingSafeEqual(digest(key), adminDigest)) return;
      if (await appOf(key)) {
        throw problems.forbidden('admin routes need the admin key; app keys cannot call them');
      }
      throw problems.unauthorized(
        "the admin key is not valid; it is the api's TWOFOLD_ADMIN_KEY (locally in .twofold/local.env)",
      );
    },
    /** Drops every kept key lookup (after a change made by this replica). */
    forget,
    /** Starts following the apps version (unref'd timer). */
    async start(): Promise<void> {
      await refresh();
      loop ??= refreshEvery(refresh, deps.refreshMs ?? 500);
    },
    stop(): void {
      void loop?.stop();
      loop = undefined;
    },
  };
}
export type Authenticator = ReturnType<typeof createAuthenticator>;
