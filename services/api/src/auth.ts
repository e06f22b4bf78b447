import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { hashApiKey, type AppRecord, type AppsRepository } from '@twofold/store';
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
 * event intake does not hit Postgres per request.
 */
export function createAuthenticator(deps: { apps: AppsRepository; adminKey: string; cacheMs?: number }) {
  const adminDigest = digest(deps.adminKey);
  const cacheMs = deps.cacheMs ?? 30_000;
  const cache = new Map<string, { app: AppRecord | undefined; until: number }>();

  async function appOf(key: string): Promise<AppRecord | undefined> {
    const keyHash = hashApiKey(key);
    let entry = cache.get(keyHash);
    if (!entry || entry.until < Date.now()) {
      entry = { app: await deps.apps.findByKeyHash(keyHash), until: Date.now() + cacheMs };
      if (cache.size > 10_000) cache.clear();
      cache.set(keyHash, entry);
    }
    return entry.app;
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
    forget(): void {
      cache.clear();
    },
  };
}
export type Authenticator = ReturnType<typeof createAuthenticator>;
